"""Admin for the merge audit: every attempt, conflicted file and review action, read-only.

Filters answer the audit's questions: which ticket, what status, which resolver settled it, who reviewed.
The rollback action is the driving app's (``coordination.admin`` adds it): merges knows no tickets.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from merges.models import ConflictFile, MergeAttempt, ReviewAction


class ReadOnly:
    """For the audit trail (a ModelAdmin or an inline): visible to staff, changed by nobody."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
