"""Admin for the merge audit: every attempt and conflicted file, read-only."""

from __future__ import annotations

from django.contrib import admin

from coordination.admin import ReadOnly
from merges.models import ConflictFile, MergeAttempt


class ConflictFileInline(ReadOnly, admin.TabularInline):
    model = ConflictFile
    fields = ("path", "kind", "source", "hunk_count", "proposed_by", "decision", "decided_by", "decided_at")
    show_change_link = True
    extra = 0


@admin.register(MergeAttempt)
class MergeAttemptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "ticket", "join", "task", "status", "merge_order", "llm_invocations", "duration_ms",
                    "started_at")
    list_select_related = ("ticket", "join__continuation", "task")
    list_filter = ("status", "ticket")
    search_fields = ("target_ref", "base_sha", "result_sha", "error")
    inlines = [ConflictFileInline]


@admin.register(ConflictFile)
class ConflictFileAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("path", "attempt", "kind", "source", "hunk_count", "proposed_by", "decision",
                    "decided_by")
    list_select_related = ("attempt", "decided_by")
    list_filter = ("kind", "proposed_by", "decision", "attempt__ticket")
    search_fields = ("path", "source", "proposed_by")
