"""The audit of every merge: what was merged, in which order, what conflicted and who decided."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class MergeAttempt(models.Model):
    """One convergence merge (a join's sources, or a single task branch) into a ticket branch."""

    STATUSES = [
        ("running", "running"),
        ("merged", "merged"),
        ("conflicted", "conflicted"),
        ("failed", "failed"),
        ("rolled_back", "rolled back"),
    ]

    ticket = models.ForeignKey("coordination.Ticket", on_delete=models.CASCADE, related_name="merge_attempts")
    join = models.ForeignKey("coordination.Join", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="merge_attempts")
    task = models.ForeignKey("coordination.Task", null=True, blank=True, on_delete=models.CASCADE,
                             related_name="merge_attempts", help_text="The task branch of a chain merge.")
    target_ref = models.CharField(max_length=300)
    base_sha = models.CharField(max_length=40, help_text="The target head the attempt started from.")
    incoming = models.JSONField(default=list, help_text="[{name, branch, sha}] of the sources.")
    conflict_scores = models.JSONField(default=dict, help_text="source → conflict hunks when picked.")
    pairwise_conflicts = models.JSONField(default=dict, help_text="source → source → conflict hunks.")
    merge_order = models.JSONField(default=list)
    pending_sources = models.JSONField(default=list, help_text="Sources not merged: conflicting first.")
    partial_sha = models.CharField(max_length=40, blank=True, help_text="Clean merges made before a conflict.")
    conflict_tree = models.CharField(
        max_length=40, blank=True, help_text="git's merge of the conflicting source onto partial_sha, with markers.")
    round = models.PositiveIntegerField(default=1, help_text="Conflict rounds so far: each stop for a person is one.")
    result_sha = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, choices=STATUSES, default="running")
    rule_set = models.CharField(max_length=20, default="complementary",
                                help_text="Resolver rules used: history-safe or complementary.")
    recovery_ref = models.CharField(max_length=300, blank=True, help_text="Keeps the target head from before.")
    review_reason = models.TextField(blank=True, help_text="Why a person must decide, when one must.")
    pending_action = models.JSONField(
        default=dict, blank=True,
        help_text="A reviewer's approve / retry / drop, queued: {kind, user_id, round, hint | source}.")
    resolvers = models.JSONField(default=dict, help_text="path → resolver that settled it.")
    llm_invocations = models.PositiveIntegerField(default=0)
    llm_cost_usd = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    merge_tree_runs = models.PositiveIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    recovery_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the sweep last sent its recovery (once per lapse of the merge lease).")
    rolled_back_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"merge #{self.pk} into {self.target_ref} ({self.status})"

    @property
    def conflict_hunks(self) -> int:
        return sum(f.hunk_count for f in self.conflict_files.all())


class ConflictFile(models.Model):
    """A conflicted path within an attempt, with the three sides and what became of it."""

    KINDS = [
        ("content", "content"),
        ("add/add", "add/add"),
        ("modify/delete", "modify/delete"),
        ("rename", "rename"),
        ("binary", "binary"),
        ("mode", "mode"),
        ("other", "other"),
    ]
    DECISIONS = [("", "undecided"), ("approved", "approved"), ("retried", "retried"), ("edited", "edited")]

    attempt = models.ForeignKey(MergeAttempt, on_delete=models.CASCADE, related_name="conflict_files")
    path = models.CharField(max_length=1000)
    kind = models.CharField(max_length=20, choices=KINDS)
    source = models.CharField(max_length=100, help_text="The source whose merge conflicted.")
    round = models.PositiveIntegerField(default=1)
    mode = models.CharField(max_length=6, default="100644", help_text="File mode for the resolved file.")
    base_oid = models.CharField(max_length=40, blank=True)
    ours_oid = models.CharField(max_length=40, blank=True)
    theirs_oid = models.CharField(max_length=40, blank=True)
    base_text = models.TextField(null=True, blank=True)
    ours_text = models.TextField(null=True, blank=True)
    theirs_text = models.TextField(null=True, blank=True)
    merged_text = models.TextField(null=True, blank=True, help_text="git's result, with conflict markers.")
    hunks = models.JSONField(default=list)
    hunk_count = models.PositiveIntegerField(default=0)
    git_messages = models.JSONField(default=list)
    resolutions = models.JSONField(default=list, blank=True,
                                   help_text="Per hunk: {tier, resolver, rationale, lines, decided_by}.")
    result_text = models.TextField(null=True, blank=True, help_text="A person's whole-file decision, if any.")
    result_deleted = models.BooleanField(default=False, help_text="A person decided the path is deleted.")
    result_oid = models.CharField(max_length=40, blank=True, help_text="A side's blob a person took whole.")
    proposed_resolution = models.TextField(null=True, blank=True)
    proposed_by = models.CharField(max_length=100, blank=True)
    validation = models.JSONField(default=dict, blank=True)
    decision = models.CharField(max_length=20, choices=DECISIONS, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["attempt", "path"]

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


class ReviewAction(models.Model):
    """One thing a person did on a review (decide, undo, approve, retry, drop), with the diff it made."""

    attempt = models.ForeignKey(MergeAttempt, on_delete=models.CASCADE, related_name="review_actions")
    conflict_file = models.ForeignKey(ConflictFile, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="review_actions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, help_text="Hunk, choice, hint, and the diff of the result.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.user} on merge #{self.attempt_id}"


class RecordedResolution(models.Model):
    """A hunk resolution a reviewer approved on a repository, reused when the same conflict comes back."""

    repository = models.ForeignKey("coordination.Repository", on_delete=models.CASCADE,
                                   related_name="recorded_resolutions")
    conflict_key = models.CharField(max_length=64)
    resolution = models.JSONField(help_text="The approved lines.")
    path = models.CharField(max_length=1000, blank=True, help_text="Where it was first approved.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    attempt = models.ForeignKey(MergeAttempt, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "conflict_key"],
                                               name="one_recorded_resolution_per_conflict")]

    def __str__(self) -> str:
        return f"{self.path} {self.conflict_key[:12]}"
