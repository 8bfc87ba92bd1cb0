"""Admin for the coordination models. State columns are read-only: statuses move only through
``transition()``, which writes the Event that the live view and the audit trail rely on."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from coordination.models import Event, Join, OwnershipClaim, Repository, Task, Ticket
from coordination.scheduling.rollback import rollback_attempt
from coordination.web.permissions import can_review
from merges.admin import MergeAttemptAdmin, ReadOnly, RecordedResolutionAdmin
from merges.models import MergeAttempt, RecordedResolution
from merges.recovery import CannotRollBack

TICKET_STATE = ("status", "base_sha", "head_sha", "published_sha", "llm_invocations", "llm_cost_usd", "error",
                "created_at", "updated_at", "finished_at")
TASK_STATE = ("status", "start_sha", "head_sha", "landed", "result", "synthesis_context", "attempts", "log",
              "error", "lease_owner", "lease_expires_at", "started_at", "finished_at", "created_at",
              "updated_at")


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("name", "url_or_path", "default_branch", "sandbox_backend", "created_at")
    list_filter = ("sandbox_backend",)
    search_fields = ("name", "url_or_path")


class TaskInline(admin.TabularInline):
    model = Task
    fields = ("key", "title", "executor", "status", "head_sha", "started_at", "finished_at")
    readonly_fields = ("status", "head_sha", "started_at", "finished_at")
    extra = 0
    show_change_link = True


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "repository", "status", "created_by", "created_at")
    list_filter = ("status", "review_policy", "repository")
    search_fields = ("title", "base_branch", "head_sha")
    list_select_related = ("repository", "created_by")
    readonly_fields = TICKET_STATE
    raw_id_fields = ("created_by",)
    inlines = [TaskInline]


class OwnershipClaimInline(admin.TabularInline):
    model = OwnershipClaim
    fields = ("pattern", "created_at", "released_at")
    readonly_fields = ("created_at", "released_at")
    extra = 0


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("key", "title", "ticket", "status", "executor", "attempts", "started_at", "finished_at")
    list_filter = ("status", "executor", "landed", "ticket")
    search_fields = ("key", "title", "head_sha")
    list_select_related = ("ticket",)
    readonly_fields = TASK_STATE
    raw_id_fields = ("ticket", "depends_on")  # a picker of every task of every ticket would not load
    inlines = [OwnershipClaimInline]


@admin.register(Join)
class JoinAdmin(admin.ModelAdmin):
    list_display = ("id", "continuation", "ticket", "status", "merge_strategy", "updated_at")
    list_filter = ("status", "ticket")
    search_fields = ("continuation__key",)
    list_select_related = ("ticket", "continuation")
    readonly_fields = ("status", "created_at", "updated_at")
    raw_id_fields = ("ticket", "continuation", "sources")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a join registers itself when a task gets its second parent


@admin.register(OwnershipClaim)
class OwnershipClaimAdmin(admin.ModelAdmin):
    list_display = ("pattern", "task", "created_at", "released_at")
    list_filter = (("released_at", admin.EmptyFieldListFilter), "task__ticket")
    search_fields = ("pattern", "task__key")
    list_select_related = ("task",)
    raw_id_fields = ("task",)


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

    list_display = (*RecordedResolutionAdmin.list_display, "review")
    fields = (*RecordedResolutionAdmin.fields, "review")
    readonly_fields = (*RecordedResolutionAdmin.readonly_fields, "review")

    @admin.display(description="made in")
    def review(self, recorded: RecordedResolution) -> SafeString | str:
        return review_link(recorded.attempt_id)


@admin.register(MergeAttempt)
class MergeAttemptWithRollbackAdmin(MergeAttemptAdmin):
    """The merge audit, plus the reviewers' rollback (it moves the ticket, so it lives with tickets)."""

    actions = ["roll_back"]
    list_display = (*MergeAttemptAdmin.list_display, "review")

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
