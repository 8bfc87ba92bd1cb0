"""Admin for the merge audit: every attempt, conflicted file, review action and recorded resolution, read-only.

Filters answer the audit's questions: which ticket, what status, which resolver settled it, who reviewed.
What a person did is shown as people read it -- a decision as its unified diff, a file's hunks as who
settled each and how (``merges.provenance``, the same words as the dashboard) -- not as stored JSON.
The rollback action and the links to the dashboard's pages are the driving app's (``coordination.admin``):
merges knows no tickets.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from merges import provenance
from merges.models import ConflictFile, MergeAttempt, RecordedResolution, ReviewAction

DIFF_STYLE = "margin:0;padding:.4rem;background:#f7f8fa;border:1px solid #dde1e8;max-height:30rem;overflow:auto"
LINE_STYLES = {"+": "background:#e3f6e9;color:#14532d", "-": "background:#fde8e8;color:#7f1d1d",
               "@": "color:#687184"}


def unified_diff_html(diff: str) -> SafeString:
    """A unified diff as a coloured block: added lines green, removed red, hunk headers grey."""
    if not diff:
        return format_html("<span>{}</span>", "no change")
    rows = ((LINE_STYLES.get(line[:1], "") if not line.startswith(("+++", "---")) else "font-weight:600", line)
            for line in diff.splitlines())
    return format_html('<pre style="{}">{}</pre>', DIFF_STYLE,
                       format_html_join("\n", '<span style="display:block;{}">{}</span>', rows))


class ReadOnly:
    """For the audit trail (a ModelAdmin or an inline): visible to staff, changed by nobody."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReviewActionDisplay:
    """How a review action reads: what was done (hunk, choice, hint, source) and the diff it made."""

    @admin.display(description="what")
    def what(self, action: ReviewAction) -> str:
        detail = action.detail or {}
        parts = [f"hunk {detail['hunk'] + 1}" if detail.get("hunk") is not None else "",
                 f"→ {provenance.CHOICES.get(detail.get('choice', ''), detail.get('choice', ''))}"
                 if detail.get("choice") else "",
                 f"round {detail['round']}" if detail.get("round") else "",
                 f"hint “{detail['hint']}”" if detail.get("hint") else "",
                 f"source {detail['source']}" if detail.get("source") else "",
                 f"outcome: {detail['outcome']}" if detail.get("outcome") else "",
                 f"{detail['recorded_resolutions']} resolution(s) recorded" if detail.get("recorded_resolutions")
                 else ""]
        return " · ".join(p for p in parts if p) or "—"

    @admin.display(description="diff")
    def diff(self, action: ReviewAction) -> SafeString:
        return unified_diff_html((action.detail or {}).get("diff", ""))


class ConflictFileInline(ReadOnly, admin.TabularInline):
    model = ConflictFile
    fields = ("path", "kind", "source", "round", "hunk_count", "proposed_by", "decision", "decided_by", "decided_at")
    show_change_link = True
    extra = 0


class ReviewActionInline(ReviewActionDisplay, ReadOnly, admin.TabularInline):
    model = ReviewAction
    fields = ("created_at", "user", "action", "conflict_file", "what", "diff")
    readonly_fields = ("what", "diff")
    ordering = ("-id",)
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
    readonly_fields = ("hunk_decisions",)

    @admin.display(description="who settled each hunk")
    def hunk_decisions(self, conflict: ConflictFile) -> SafeString:
        rows = ((f"{r.index + 1} (line {r.line})" if r.line else "whole file", r.decided_by or "undecided",
                 r.choice or "—", r.decided_at or "—", r.rationale or "") for r in provenance.hunk_records(conflict))
        return format_html("<table><tr><th>hunk</th><th>decided by</th><th>choice</th><th>when</th>"
                           "<th>rationale</th></tr>{}</table>",
                           format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                                            rows))


@admin.register(ReviewAction)
class ReviewActionAdmin(ReviewActionDisplay, ReadOnly, admin.ModelAdmin):
    list_display = ("id", "created_at", "user", "action", "attempt", "conflict_file", "what")
    list_select_related = ("user", "attempt", "conflict_file")
    list_filter = ("action", ("user", admin.RelatedOnlyFieldListFilter), "attempt__ticket", "attempt__status")
    search_fields = ("action", "conflict_file__path", "detail")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    fields = ("created_at", "user", "action", "attempt", "conflict_file", "what", "diff")
    readonly_fields = ("what", "diff")


@admin.register(RecordedResolution)
class RecordedResolutionAdmin(ReadOnly, admin.ModelAdmin):
    """What the ``recorded`` resolver reuses, and which approved merge each answer comes from."""

    list_display = ("path", "repository", "approved_by", "attempt", "created_at")
    list_select_related = ("repository", "approved_by", "attempt")
    list_filter = ("repository", ("approved_by", admin.RelatedOnlyFieldListFilter))
    search_fields = ("path", "conflict_key")
    ordering = ("-created_at",)
    fields = ("path", "repository", "conflict_key", "approved_by", "attempt", "created_at", "lines")
    readonly_fields = ("lines",)

    @admin.display(description="approved lines")
    def lines(self, recorded: RecordedResolution) -> SafeString:
        return format_html('<pre style="{}">{}</pre>', DIFF_STYLE, "\n".join(recorded.resolution or []))
