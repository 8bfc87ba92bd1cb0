"""Admin for the coordination models: an audit view, not a side door.

What runs on the workers — commands, instructions, executors, ownership globs, dependencies, timeouts, the
verify command, review policy, thresholds, budgets, leases, sandboxes, join sources and strategies — is
decided by the spec path (``dagmerge submit``, the API), which validates it and writes the events. Here
every field is read-only unless an admin class lists it in ``editable`` (titles only), nothing is added or
deleted, and each change that is allowed is an ``admin.changed`` Event naming who changed which fields.
Statuses move only through ``transition()``.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from coordination.models import Event, Join, OwnershipClaim, Repository, StatefulModel, SubmittedSpec, Task, Ticket
from coordination.scheduling.rollback import rollback_attempt
from coordination.scheduling.ticket_access import revoke_ticket_token
from coordination.web.permissions import can_review
from merges.admin import MergeAttemptAdmin, ReadOnly, RecordedResolutionAdmin
from merges.models import MergeAttempt, RecordedResolution
from merges.recovery import CannotRollBack


class AuditedAdmin(admin.ModelAdmin):
    """Read-only except the fields named in ``editable`` (an allow-list: a new model field is read-only
    until someone decides otherwise); no adding, no deleting; every saved change is an Event."""

    editable: tuple[str, ...] = ()

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        opts = self.model._meta
        hidden = set(self.exclude or ())
        return [f.name for f in (*opts.concrete_fields, *opts.many_to_many)
                if not f.primary_key and f.name not in self.editable and f.name not in hidden]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tickets and tasks come through the spec path, which validates them

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # deleting a task would release its dependants; cancelling is the dashboard's

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        """Write only the allowed fields the form changed (a full save could put back a status a worker
        moved meanwhile), and the Event with it: the admin's view runs in one transaction."""
        assert isinstance(obj, StatefulModel)  # tickets and tasks: the rows whose changes are events
        changed = sorted(name for name in form.changed_data if name in self.editable)
        if not changed:
            return
        obj.save(update_fields=[*changed, "updated_at"])
        Event.record(obj.event_ticket, "admin.changed", {
            "by": request.user.get_username(), "model": obj._meta.model_name, "id": obj.pk, "fields": changed,
        })


@admin.register(Repository)
class RepositoryAdmin(ReadOnly, admin.ModelAdmin):
    """Repositories register themselves on the first submit of a spec naming them."""

    list_display = ("name", "url_or_path", "default_branch", "sandbox_backend", "created_at")
    list_filter = ("sandbox_backend",)
    search_fields = ("name", "url_or_path")


class TaskInline(ReadOnly, admin.TabularInline):
    model = Task
    fields = ("key", "title", "executor", "status", "head_sha", "started_at", "finished_at")
    extra = 0
    show_change_link = True


class SubmittedSpecInline(ReadOnly, admin.StackedInline):
    model = SubmittedSpec
    fields = ("spec",)
    verbose_name = verbose_name_plural = "submitted spec"


@admin.register(Ticket)
class TicketAdmin(AuditedAdmin):
    list_display = ("id", "title", "repository", "status", "created_by", "created_at")
    list_filter = ("status", "review_policy", "repository")
    search_fields = ("title", "base_branch", "head_sha")
    list_select_related = ("repository", "created_by")
    editable = ("title",)
    exclude = ("token_nonce",)  # harmless without the secret key, but of no use to a reader either
    inlines = [SubmittedSpecInline, TaskInline]
    actions = ["revoke_token"]

    @admin.action(description="Revoke the discovered-work token (running tasks lose API access)",
                  permissions=["change"])
    def revoke_token(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        for ticket_id in queryset.values_list("pk", flat=True):
            revoke_ticket_token(ticket_id, request.user)
        self.message_user(request, f"revoked the token of {queryset.count()} ticket(s)", messages.SUCCESS)


class OwnershipClaimInline(ReadOnly, admin.TabularInline):
    model = OwnershipClaim
    fields = ("pattern", "created_at", "released_at")
    extra = 0


@admin.register(Task)
class TaskAdmin(AuditedAdmin):
    list_display = ("key", "title", "ticket", "status", "executor", "attempts", "started_at", "finished_at")
    list_filter = ("status", "executor", "landed", "ticket")
    search_fields = ("key", "title", "head_sha")
    list_select_related = ("ticket",)
    editable = ("title",)
    inlines = [OwnershipClaimInline]


@admin.register(Join)
class JoinAdmin(ReadOnly, admin.ModelAdmin):
    """A join registers itself when a task gets its second parent; its sources and strategy are the spec's."""

    list_display = ("id", "continuation", "ticket", "status", "merge_strategy", "updated_at")
    list_filter = ("status", "ticket")
    search_fields = ("continuation__key",)
    list_select_related = ("ticket", "continuation")


@admin.register(OwnershipClaim)
class OwnershipClaimAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("pattern", "task", "created_at", "released_at")
    list_filter = (("released_at", admin.EmptyFieldListFilter), "task__ticket")
    search_fields = ("pattern", "task__key")
    list_select_related = ("task",)


@admin.register(Event)
class EventAdmin(ReadOnly, admin.ModelAdmin):
    """The audit trail, newest first: what just happened is what one comes to read."""

    list_display = ("id", "ticket", "kind", "payload", "created_at")
    list_select_related = ("ticket",)
    list_filter = ("kind", "ticket")
    ordering = ("-id",)
    search_fields = ("kind", "payload")
    date_hierarchy = "created_at"


def review_link(attempt_id: int | None) -> SafeString | str:
    """The dashboard's review page of a merge: the record of every round a person decided."""
    if not attempt_id:
        return "—"
    return format_html('<a href="{}">review of merge #{}</a>', reverse("coordination:review", args=[attempt_id]),
                       attempt_id)


admin.site.unregister(MergeAttempt)
admin.site.unregister(RecordedResolution)


@admin.register(RecordedResolution)
class RecordedResolutionWithReviewAdmin(RecordedResolutionAdmin):
    """Each recorded resolution links to the review that made it."""

    list_display = (*RecordedResolutionAdmin.list_display, "review")  # type: ignore[assignment]
    fields = (*RecordedResolutionAdmin.fields, "review")  # type: ignore[assignment]
    readonly_fields = (*RecordedResolutionAdmin.readonly_fields, "review")  # type: ignore[assignment]

    @admin.display(description="made in")
    def review(self, recorded: RecordedResolution) -> SafeString | str:
        return review_link(recorded.attempt_id)


@admin.register(MergeAttempt)
class MergeAttemptWithRollbackAdmin(MergeAttemptAdmin):
    """The merge audit, plus the reviewers' rollback (it moves the ticket, so it lives with tickets)."""

    actions = ["roll_back"]
    list_display = (*MergeAttemptAdmin.list_display, "review")  # type: ignore[assignment]

    @admin.display(description="review")
    def review(self, attempt: MergeAttempt) -> SafeString | str:
        return review_link(attempt.pk) if attempt.round > 1 or attempt.status == "conflicted" else "—"

    @admin.action(description="Roll back: the ticket branch to the attempt's recovery point (CAS)",
                  permissions=["roll_back"])
    def roll_back(self, request, queryset) -> None:
        for attempt in queryset.order_by("-pk"):  # latest first: earlier ones need the later undone
            try:
                rollback_attempt(attempt.pk, request.user)
            except CannotRollBack as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"merge #{attempt.pk} rolled back", messages.SUCCESS)

    def has_roll_back_permission(self, request) -> bool:
        return can_review(request.user)
