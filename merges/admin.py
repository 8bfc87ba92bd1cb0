"""Admin for the merge audit: every attempt, conflicted file and review action, read-only.

Filters answer the audit's questions: which ticket, what status, which resolver settled it, who reviewed.
"""

from __future__ import annotations

from django.contrib import admin, messages

from coordination.admin import ReadOnly
from coordination.web.permissions import can_review
from merges.models import ConflictFile, MergeAttempt, ReviewAction


class ConflictFileInline(ReadOnly, admin.TabularInline):
    model = ConflictFile
    fields = ("path", "kind", "source", "round", "hunk_count", "proposed_by", "decision", "decided_by", "decided_at")
    show_change_link = True
    extra = 0


class ReviewActionInline(ReadOnly, admin.TabularInline):
    model = ReviewAction
    fields = ("created_at", "user", "action", "conflict_file", "detail")
    extra = 0


@admin.register(MergeAttempt)
class MergeAttemptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "ticket", "join", "task", "status", "round", "merge_order", "llm_invocations",
                    "llm_cost_usd", "duration_ms", "started_at")
    list_select_related = ("ticket", "join__continuation", "task")
    list_filter = ("status", "rule_set", "ticket", ("conflict_files__proposed_by", admin.AllValuesFieldListFilter),
                   ("review_actions__user", admin.RelatedOnlyFieldListFilter))
    search_fields = ("target_ref", "base_sha", "result_sha", "error", "review_reason")
    date_hierarchy = "started_at"
    inlines = [ConflictFileInline, ReviewActionInline]
    actions = ["roll_back"]

    @admin.action(description="Roll back: the ticket branch to the attempt's recovery point (CAS)",
                  permissions=["roll_back"])
    def roll_back(self, request, queryset) -> None:
        from coordination.scheduling.flow import rollback_attempt
        from merges.recovery import CannotRollBack

        for attempt in queryset.order_by("-pk"):  # latest first: earlier ones need the later undone
            try:
                rollback_attempt(attempt.pk, request.user)
            except CannotRollBack as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"merge #{attempt.pk} rolled back", messages.SUCCESS)

    def has_roll_back_permission(self, request) -> bool:
        return can_review(request.user)


@admin.register(ConflictFile)
class ConflictFileAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("path", "attempt", "kind", "source", "round", "hunk_count", "proposed_by", "decision",
                    "decided_by", "decided_at")
    list_select_related = ("attempt", "decided_by")
    list_filter = ("kind", "decision", ("proposed_by", admin.AllValuesFieldListFilter), "attempt__status",
                   ("decided_by", admin.RelatedOnlyFieldListFilter), "attempt__ticket")
    search_fields = ("path", "source", "proposed_by")


@admin.register(ReviewAction)
class ReviewActionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "created_at", "user", "action", "attempt", "conflict_file")
    list_select_related = ("user", "attempt", "conflict_file")
    list_filter = ("action", ("user", admin.RelatedOnlyFieldListFilter), "attempt__ticket", "attempt__status")
    search_fields = ("action", "conflict_file__path", "detail")
    date_hierarchy = "created_at"
