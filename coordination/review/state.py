"""Where a review stands, in the words of its summary box: what is left, what is queued, how it ended.

Approve, retry and drop are queued jobs: the request answers at once with the attempt running and the
action pending, and the outcome arrives later (the page follows it live). This module reads which of
those moments the attempt is in, and whether the last action did what was asked: one that could not
(the agent had nothing to offer, the merge failed) is a warning, never a success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from merges import review
from merges.models import MergeAttempt, ReviewAction

if TYPE_CHECKING:
    from coordination.review.page import FileView, RoundView

PENDING = {"approve": "Approving", "retry": "Asking the agent again", "drop": "Merging without"}
ACTIONS = ("approve", "retry_with_hint", "retry_result", "drop_source")  # the actions a summary reports on


@dataclass
class Summary:
    attempt: MergeAttempt
    remaining: int
    files_left: int
    problems: list[str]
    first_open: str  # anchor of the first undecided hunk or card, "" when none
    retry_blocked: str = ""  # why "retry with a hint" cannot run; "" when it can
    last: ReviewAction | None = None  # the newest approve / retry / drop (or a retry's result)
    closing: ReviewAction | None = None  # what ended the newest decided round

    @property
    def open(self) -> bool:
        return self.attempt.status == "conflicted"

    @property
    def pending(self) -> dict:
        return self.attempt.pending_action if self.attempt.status == "running" else {}

    @property
    def pending_label(self) -> str:
        kind = self.pending.get("kind", "")
        return f"{PENDING.get(kind, kind)}{' ' + self.pending['source'] if kind == 'drop' else ''}…"

    @property
    def requested(self) -> ReviewAction | None:
        """The request of the pending action (who asked, when)."""
        return self.last if self.pending and self.last and self.last.action != "retry_result" else None

    @property
    def warning(self) -> str:
        """Why the last action did not do what was asked, or why the merge stopped; "" when all is well."""
        if self.attempt.status == "failed":
            return f"Merge #{self.attempt.pk} failed: {self.attempt.error}"
        last = self.last
        if self.open and last and last.action == "retry_result" and last.detail.get("outcome") != "proposed":
            why = last.detail.get("llm_error") or last.detail.get("outcome", "")
            return f"The agent was asked again with the hint and did not settle the conflict: {why}"
        return ""

    @property
    def note(self) -> str:
        """What the last action did, when it matters for what the page shows now."""
        last = self.last
        if not self.open or last is None:
            return ""
        if last.action == "retry_result" and last.detail.get("outcome") == "proposed":
            return "The agent answered the hint: its proposal is in the hunks below. Check it, then approve."
        if last.action == "approve" and last.detail.get("round", 0) < self.attempt.round:
            return (f"Round {last.detail.get('round')} was approved; the next source conflicts too, so this is "
                    f"round {self.attempt.round}.")
        return ""


def summary(attempt: MergeAttempt, files: Sequence[FileView], rounds: Sequence[RoundView],
            retry_blocked: str) -> Summary:
    first = next((f for f in files if f.remaining), None)
    anchor = ""
    if first is not None:
        hunk = first.next_hunk
        anchor = f"hunk-{first.file.pk}-{hunk.index}" if hunk and not first.whole_file else f"file-{first.file.pk}"
    closings = [r.closing for r in rounds if r.closing is not None]
    last = (ReviewAction.objects.filter(attempt=attempt, action__in=ACTIONS).select_related("user")
            .order_by("-id").first())
    return Summary(attempt, sum(f.remaining for f in files), sum(1 for f in files if f.remaining),
                   review.gate_problems(attempt) if attempt.status == "conflicted" else [], anchor,
                   retry_blocked, last, max(closings, key=lambda a: a.pk, default=None))
