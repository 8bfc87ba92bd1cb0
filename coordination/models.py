"""Tickets, their task DAG, joins, ownership claims and the event log."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from coordination.domain import states
from coordination.domain.tokens import new_token_nonce


class Repository(models.Model):
    """A git repository tickets work on; dagmerge keeps its own clone of it in the workspace."""

    SANDBOXES = [("local", "local worktree"), ("daytona", "Daytona")]

    name = models.CharField(max_length=200)
    url_or_path = models.CharField(max_length=1000, unique=True)
    default_branch = models.CharField(max_length=255, default="main")
    sandbox_backend = models.CharField(max_length=20, choices=SANDBOXES, default="local")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.name


class StatefulModel(models.Model):
    """A row whose ``status`` only moves along its state machine, each move logged as an Event."""

    machine: states.StateMachine
    status: str  # each model declares it, with its machine's choices

    class Meta:
        abstract = True

    def transition(self, new: str, *, event_payload: dict | None = None, **fields) -> Event:
        """Move to ``new`` and write the Event in the same transaction; raises IllegalTransition.

        Callers hold the row when a concurrent move is possible: ``select_for_update(no_key=True)`` (on
        PostgreSQL ``FOR NO KEY UPDATE``: a row inserted meanwhile that refers to this one, an event or a
        merge attempt, does not wait for it, which deadlocked with the next lock its writer took), a ticket
        before its join or task.
        """
        self.machine.check(self.status, new)
        old, self.status = self.status, new
        for name, value in fields.items():
            setattr(self, name, value)
        # No savepoint inside the caller's transaction (two statements a move): a failure here fails it.
        with transaction.atomic(savepoint=False):
            self.save(update_fields=["status", "updated_at", *fields])
            return Event.record(
                self.event_ticket,
                f"{self.machine.name}.{new}",
                {"from": old, "to": new, **self.event_refs(), **(event_payload or {})},
            )

    @property
    def event_ticket(self) -> Ticket:
        raise NotImplementedError

    def event_refs(self) -> dict:
        return {}


class Ticket(StatefulModel):
    machine = states.TICKET
    sandbox_backend = models.CharField(max_length=20, choices=Repository.SANDBOXES, blank=True,
                                       help_text="Where its tasks run; blank: the repository's choice.")
    serialize_overlaps = models.BooleanField(
        default=False, help_text="Order tasks whose claims overlap by dependency instead of warning.")
    REVIEW_POLICIES = [("threshold", "over the threshold"), ("always", "always"), ("never", "never")]

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="tickets")
    title = models.CharField(max_length=300)
    base_branch = models.CharField(max_length=255)
    base_sha = models.CharField(max_length=40)
    head_sha = models.CharField(max_length=40, help_text="Head of ticket/<id> in the workspace.")
    published_sha = models.CharField(max_length=40, blank=True, help_text="Last value pushed to the source.")
    publish_failures = models.PositiveIntegerField(default=0, help_text="Pushes failed since the last success.")
    publish_retry_at = models.DateTimeField(null=True, blank=True, help_text="When the sweep pushes again.")
    status = models.CharField(max_length=20, choices=machine.choices, default="pending")
    conflict_threshold = models.PositiveIntegerField(default=10)
    review_policy = models.CharField(max_length=20, choices=REVIEW_POLICIES, default="threshold")
    verify_command = models.CharField(max_length=2000, blank=True)
    network = models.BooleanField(default=False, help_text="Its tasks and verify command may use the network.")
    llm_max_invocations = models.PositiveIntegerField(default=20)
    llm_max_usd = models.DecimalField(max_digits=10, decimal_places=4, default=5)
    llm_invocations = models.PositiveIntegerField(default=0)
    llm_cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    llm_reserved_invocations = models.PositiveIntegerField(default=0, help_text="Held by agents running now.")
    llm_reserved_usd = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    error = models.TextField(blank=True)
    merge_lock_owner = models.CharField(max_length=200, blank=True)
    merge_lock_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Part of the discovered-work token's HMAC; a new value revokes every token given out before.
    token_nonce = models.CharField(max_length=64, default=new_token_nonce, editable=False)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def branch(self) -> str:
        return f"ticket/{self.pk}"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def event_ticket(self) -> Ticket:
        return self


class SubmittedSpec(models.Model):
    """The spec a ticket was submitted with, as given: kept for the record and for people, never on the
    scheduler's way. In the ticket's own row, every read of it (several per task) decoded the whole spec:
    150 kB of JSON and 3 ms for a 1,000-task ticket."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, primary_key=True, related_name="submitted")
    spec = models.JSONField(default=dict, help_text="The submitted spec, as given.")

    def __str__(self) -> str:
        return f"spec of ticket #{self.ticket_id}"


class Task(StatefulModel):
    machine = states.TASK
    EXECUTORS = [("shell", "shell command"), ("claude", "Claude agent")]

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="tasks")
    key = models.CharField(max_length=100)
    title = models.CharField(max_length=300)
    instructions = models.TextField(blank=True)
    executor = models.CharField(max_length=20, choices=EXECUTORS, default="shell")
    command = models.TextField(blank=True)
    depends_on = models.ManyToManyField("self", symmetrical=False, related_name="dependents", blank=True)
    owned_files = models.JSONField(default=list, blank=True)
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    network = models.BooleanField(default=False, help_text="Its commands may use the network (else: none).")
    status = models.CharField(max_length=20, choices=machine.choices, default="pending")
    start_sha = models.CharField(max_length=40, blank=True)
    head_sha = models.CharField(max_length=40, blank=True)
    landed = models.BooleanField(default=False, help_text="Its work is on the ticket branch.")
    waiting_on = models.CharField(max_length=500, blank=True,
                                  help_text="Why a task whose parents are done has not started (a claim overlap).")
    result = models.JSONField(null=True, blank=True)
    synthesis_context = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(
        default=3, help_text="Runs allowed before a task whose worker keeps dying fails.")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["ticket", "key"], name="unique_task_key_per_ticket")]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"

    @property
    def branch(self) -> str:
        # Not ticket/<id>/task/<key>: git cannot hold a branch ticket/<id> and refs below it at once
        # (a ref is a file in a loose-ref store, so "ticket/7" cannot also be a folder).
        return f"ticket/{self.ticket_id}-task/{self.key}"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def event_ticket(self) -> Ticket:
        return self.ticket

    def event_refs(self) -> dict:
        return {"task": self.key, "task_id": self.pk}


class Join(StatefulModel):
    """A task with two or more parents: its sources converge before it may start."""

    machine = states.JOIN

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="joins")
    continuation = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="join")
    sources = models.ManyToManyField(Task, related_name="source_of_joins")
    merge_strategy = models.CharField(max_length=30, default="all")
    status = models.CharField(max_length=20, choices=machine.choices, default="waiting")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"join → {self.continuation.key}"

    @property
    def event_ticket(self) -> Ticket:
        return self.ticket

    def event_refs(self) -> dict:
        return {"join_id": self.pk, "continuation": self.continuation.key}


class OwnershipClaim(models.Model):
    """A glob pattern a task holds while it runs, so that no parallel task edits the same files."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="claims")
    pattern = models.CharField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task.key} claims {self.pattern}"


# Kinds /metrics counts (recoveries, publish failures): indexed apart, so a scrape does not read every
# task.log row.
COUNTED_EVENT_KINDS = ("join.synthesizing", "merge.recovered", "publish.failed", "task.ready")


class Event(models.Model):
    """Append-only log of state changes: the audit trail and the source of the live stream."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    COUNTED_KINDS = COUNTED_EVENT_KINDS

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["ticket", "id"]),
                   models.Index(fields=["kind"], name="event_counted_kind",
                                condition=models.Q(kind__in=COUNTED_EVENT_KINDS))]

    def __str__(self) -> str:
        return f"{self.pk} {self.kind}"

    @classmethod
    def record(cls, ticket: Ticket, kind: str, payload: dict | None = None) -> Event:
        """Write an event; the caller's transaction makes it atomic with the change it reports.
        Watching browsers hear of it through ``web.live`` (a post_save receiver)."""
        event = cls.objects.create(ticket=ticket, kind=kind, payload=payload or {})
        return event

    @classmethod
    def record_all(cls, ticket: Ticket, events: Sequence[tuple[str, dict]]) -> list[Event]:
        """``record`` for the events of one change, in one INSERT; each is announced (post_save) as there."""
        made = Event.objects.bulk_create(Event(ticket=ticket, kind=kind, payload=payload) for kind, payload in events)
        for event in made:
            post_save.send(sender=Event, instance=event, created=True, update_fields=None, raw=False,
                           using=event._state.db)
        return made
