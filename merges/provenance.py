"""Who settled each hunk of a merge, with which choice and when: one reading of the audit for every page.

The review page, the merge page and the admin all answer the same questions (where is the hunk, what
holds it now, who or what put it there, when, and on whose earlier review a reused resolution rests), so
they read them here and cannot disagree: a hunk's line is the same number everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from merges.engine.conflicts import TEXT_KINDS
from merges.models import ConflictFile, MergeAttempt, ReviewAction

# What a person's choice is called wherever it is shown.
CHOICES = {
    "ours": "ours", "theirs": "theirs", "both_ours_first": "both, ours first",
    "both_theirs_first": "both, theirs first", "proposal": "the proposal", "edit": "edited",
    "keep": "kept the changed file", "delete": "deleted",
}
CLOSING_ACTIONS = ("approve", "drop_source")  # what ends a round a person decided
ACTIONS = {  # a review action as the record says it
    "decide_hunk": "decided", "undo_hunk": "undid", "decide_file": "decided the whole file", "approve": "approved",
    "retry_with_hint": "asked the agent again", "retry_result": "the agent answered", "drop_source": "dropped",
}


@dataclass
class HunkRecord:
    """One hunk (or a whole-file card: ``index`` 0, ``line`` 0) and what became of it."""

    index: int
    line: int  # where the hunk starts in ours (git's merged text less the markers and other sides above it)
    tier: str  # "" (open), "resolver", "llm", "human"
    decided_by: str  # "person: alice", "resolver: line_merge", "LLM"; "" while open
    choice: str  # "theirs", "both, ours first", "the proposal (LLM)", "edited", "proposal" for a machine's
    decided_at: datetime | None
    rationale: str
    whole_file: bool = False  # decided for the whole file, not hunk by hunk
    recorded: dict = field(default_factory=dict)  # the reviewed resolution reused: {id, attempt_id, ticket_id, ...}

    @property
    def decided(self) -> bool:
        return bool(self.tier)

    @property
    def person(self) -> str:
        return self.decided_by.removeprefix("person: ") if self.tier == "human" else ""


def hunk_lines(conflict: ConflictFile) -> list[int]:
    """Each hunk's first line in ours: its line in git's merged text, less the marker lines and the base
    and theirs sections of the hunks above it."""
    lines, shift = [], 0
    for hunk in conflict.hunks or []:
        lines.append(hunk["start"] - shift)
        shift += (hunk.get("end") or hunk["start"]) - hunk["start"] + 1 - len(hunk["ours"])
    return lines


def origin(resolution: dict) -> str:
    """Who a hunk's record names: a person, the LLM, a resolver; "" for nobody yet."""
    tier, resolver = resolution.get("tier", ""), resolution.get("resolver", "")
    if tier == "human":
        return "person: " + resolver.removeprefix("human:")
    if tier == "llm":
        return "LLM"
    return f"resolver: {resolver or tier}" if tier else ""


def hunk_records(conflict: ConflictFile) -> list[HunkRecord]:
    """One record per hunk; a file decided as a whole (or a card with no hunks) says so on each."""
    whole = conflict.result_text is not None or conflict.result_deleted or bool(conflict.result_oid)
    resolutions = list(conflict.resolutions or [])
    hunks = conflict.hunks if conflict.kind in TEXT_KINDS else []
    count = max(len(hunks), 1)
    lines = hunk_lines(conflict) if hunks else [0]
    records = []
    for index in range(count):
        resolution = (resolutions[index] if index < len(resolutions) else None) or {}
        tier = resolution.get("tier", "") if resolution.get("lines") is not None or whole else ""
        if whole and conflict.decided_by_id:
            tier = "human"
        records.append(HunkRecord(
            index=index, line=lines[index], tier=tier,
            decided_by=("person: " + conflict.decided_by.get_username() if whole and conflict.decided_by
                        else origin(resolution) if tier else ""),
            choice=_choice(resolution, tier, whole, conflict),
            decided_at=_when(resolution, conflict) if tier == "human" else None,
            rationale=resolution.get("rationale", "") or (resolution.get("previous") or {}).get("rationale", ""),
            whole_file=whole, recorded=resolution.get("recorded") or {},
        ))
    return records


def _choice(resolution: dict, tier: str, whole: bool, conflict: ConflictFile) -> str:
    if not tier:
        return ""
    if whole:
        if conflict.result_deleted:
            return "deleted (whole file)"
        if conflict.result_oid:
            side = "ours" if conflict.result_oid == conflict.ours_oid else "theirs"
            return f"{side} (whole file)"
        return CHOICES.get(resolution.get("choice", ""), "edited") + " (whole file)"
    if tier != "human":
        return "proposal"
    choice = resolution.get("choice", "")
    if choice == "proposal":
        proposer = origin(resolution.get("previous") or {})
        return f"the proposal ({proposer})" if proposer else "the proposal"
    return CHOICES.get(choice, choice)


def _when(resolution: dict, conflict: ConflictFile) -> datetime | None:
    stamp = resolution.get("decided_at")
    return parse_datetime(stamp) if stamp else conflict.decided_at


def round_closings(attempt: MergeAttempt) -> dict[int, ReviewAction]:
    """round → the approve or drop that ended it (the latest, should a worker have re-run one)."""
    actions = ReviewAction.objects.filter(attempt=attempt, action__in=CLOSING_ACTIONS).select_related("user")
    return {action.detail.get("round", 1): action for action in actions.order_by("id")}
