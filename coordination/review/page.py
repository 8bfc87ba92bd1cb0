"""What the review page shows for a conflicted merge attempt: per file, per hunk, and for the whole merge.

Read-only: ``merges.review`` records decisions and keeps the gate; this module lays out what a reviewer
needs to take them (both sides as diffs against the base, where each side came from, who proposed and
who decided what) and renders the partials a decision swaps.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string

from coordination.models import Task
from coordination.web import dashboard
from merges import review
from merges.engine.conflicts import TEXT_KINDS
from merges.models import ConflictFile, MergeAttempt, ReviewAction

LARGE_LINES = 3000  # past this a file is shown as its hunks only: no whole-file diffs, no whole-file editor
LARGE_CHARS = 300_000
HISTORY = 30  # review actions listed on the page

# What each whole-file card says happened, and what the choices mean there.
CARDS = {
    "modify/delete": "One side changed this file and the other deleted it.",
    "rename": "The sides disagree about this file's name or place (a rename on one side, a change or another "
              "rename on the other).",
    "add/add": "Both sides created this file, with different contents.",
    "binary": "This file is binary (or too large, or not UTF-8): no text merge is possible, pick a side.",
    "mode": "The sides disagree about this file's mode (executable or not).",
    "other": "git could not merge this path; pick what it becomes.",
}


@dataclass
class Side:
    """Where one side of a conflict came from: a task (title, instructions), or the ticket branch."""

    label: str
    tasks: list[Task]


@dataclass
class DiffLine:
    op: str  # " ", "-", "+"
    text: str


@dataclass
class HunkView:
    index: int
    start: int
    ours: list[str]
    base: list[str]
    theirs: list[str]
    ours_diff: list[DiffLine]
    theirs_diff: list[DiffLine]
    resolution: dict
    proposal: list[str] | None  # what a resolver or the agent proposed, when it still stands
    decided: bool
    edit_text: str
    line: int = 0  # where the hunk starts in ours (the merged text's line, less the markers before it)

    @property
    def proposal_text(self) -> str:
        return "\n".join(self.proposal or [])

    @property
    def result_text(self) -> str:
        return "\n".join(self.result)

    @property
    def tier(self) -> str:
        return self.resolution.get("tier", "")

    @property
    def origin(self) -> str:
        """Who proposed what this hunk holds now: a resolver's name, the LLM, a person, or git (nothing)."""
        tier = self.tier
        if tier == "human":
            previous = self.resolution.get("previous") or {}
            return _origin_of(previous) if previous.get("tier") else "git (no proposal)"
        return _origin_of(self.resolution) if tier else "git (no proposal)"

    @property
    def decided_by(self) -> str:
        tier = self.tier
        if not self.decided:
            return ""
        if tier == "human":
            return "person: " + self.resolution.get("resolver", "").removeprefix("human:")
        return "LLM" if tier == "llm" else f"auto: {self.resolution.get('resolver') or tier}"

    @property
    def rationale(self) -> str:
        if self.tier == "human":
            return (self.resolution.get("previous") or {}).get("rationale", "")
        return self.resolution.get("rationale", "")

    @property
    def can_undo(self) -> bool:
        return self.tier == "human"

    @property
    def result(self) -> list[str]:
        return list(self.resolution.get("lines") or [])


@dataclass
class FileView:
    file: ConflictFile
    hunks: list[HunkView]
    remaining: int
    result: str | None
    large: bool
    clean_diff: list[DiffLine] = field(default_factory=list)  # non-conflicting changes, already applied

    @property
    def card(self) -> str:
        return CARDS.get(self.file.kind, "") if self.file.kind != "content" else ""

    @property
    def whole_file(self) -> bool:
        """Decided as a whole (a card), not hunk by hunk."""
        return self.file.kind not in TEXT_KINDS or not self.file.hunks

    @property
    def decided_whole(self) -> bool:
        return self.file.result_text is not None or self.file.result_deleted or bool(self.file.result_oid)

    @property
    def deleted_by(self) -> str:
        """For modify/delete: "ours" or "theirs", the side without the file."""
        if not self.file.ours_oid:
            return "ours"
        return "theirs" if not self.file.theirs_oid else ""

    @property
    def next_hunk(self) -> HunkView | None:
        return next((h for h in self.hunks if not h.decided), None)


def page(attempt_id: int) -> dict[str, Any]:
    attempt = get_object_or_404(MergeAttempt.objects.select_related("ticket__repository", "join__continuation",
                                                                    "task"), pk=attempt_id)
    files = [file_view(f) for f in review.current_files(attempt).select_related("decided_by")]
    names = [i["name"] for i in attempt.incoming]
    tasks = {t.key: t for t in Task.objects.filter(ticket_id=attempt.ticket_id, key__in=names)
             .only("id", "key", "title", "instructions", "status", "ticket_id")}
    theirs_name = attempt.pending_sources[0] if attempt.pending_sources else ""
    continuation = attempt.join.continuation if attempt.join else attempt.task
    watched = [tasks[n] for n in names if n in tasks] + ([continuation] if continuation else [])
    return {
        **dashboard._header(attempt.ticket_id),
        "seq": dashboard.latest_seq(attempt.ticket_id),
        "attempt": attempt,
        "files": files,
        "summary": summary(attempt, files),
        "ours": Side("the ticket branch" + (" with " + ", ".join(attempt.merge_order) if attempt.merge_order
                                           else ""), [tasks[n] for n in attempt.merge_order if n in tasks]),
        "theirs": Side(theirs_name, [tasks[theirs_name]] if theirs_name in tasks else []),
        "continuation": continuation,
        "watched": Task.objects.filter(pk__in=[t.pk for t in watched]).defer(*dashboard.HEAVY_TASK_FIELDS),
        "droppable": attempt.pending_sources[:1],
        "history": list(ReviewAction.objects.filter(attempt=attempt).select_related("user", "conflict_file")
                        .order_by("-id")[:HISTORY]),
    }


@dataclass
class Summary:
    attempt: MergeAttempt
    remaining: int
    files_left: int
    problems: list[str]
    first_open: str  # anchor of the first undecided hunk or card, "" when none

    @property
    def open(self) -> bool:
        return self.attempt.status == "conflicted"


def summary(attempt: MergeAttempt, files: list[FileView]) -> Summary:
    first = next((f for f in files if f.remaining), None)
    anchor = ""
    if first is not None:
        hunk = first.next_hunk
        anchor = f"hunk-{first.file.pk}-{hunk.index}" if hunk and not first.whole_file else f"file-{first.file.pk}"
    return Summary(attempt, sum(f.remaining for f in files), sum(1 for f in files if f.remaining),
                   review.gate_problems(attempt) if attempt.status == "conflicted" else [], anchor)


def file_view(conflict: ConflictFile) -> FileView:
    resolutions = review.hunk_decisions(conflict)
    text = conflict.merged_text or ""
    large = text.count("\n") > LARGE_LINES or len(text) > LARGE_CHARS
    hunks = []
    shift = 0  # lines of markers and of theirs/base sections above this hunk, absent from ours
    for index, (hunk, resolution) in enumerate(zip(conflict.hunks, resolutions, strict=True)):
        decided = review.is_decided(resolution)
        proposal = resolution.get("lines") if resolution.get("tier") not in ("", "human") else None
        current = resolution.get("lines") if decided else hunk["ours"] + hunk["theirs"]
        hunks.append(HunkView(
            index=index, start=hunk["start"], ours=hunk["ours"], base=hunk["base"], theirs=hunk["theirs"],
            ours_diff=line_diff(hunk["base"], hunk["ours"]), theirs_diff=line_diff(hunk["base"], hunk["theirs"]),
            resolution=resolution, proposal=proposal, decided=decided, edit_text="\n".join(current or []),
            line=hunk["start"] - shift,
        ))
        shift += (hunk.get("end") or hunk["start"]) - hunk["start"] + 1 - len(hunk["ours"])
    view = FileView(conflict, hunks, review.remaining_hunks(conflict), review.result_text(conflict), large)
    if not large and conflict.base_text is not None and conflict.merged_text is not None and conflict.hunks:
        view.clean_diff = clean_changes(conflict)
    return view


def line_diff(base: list[str], side: list[str]) -> list[DiffLine]:
    """``side`` against ``base``, line by line: what that side did to this part of the file."""
    out: list[DiffLine] = []
    for op, b1, b2, s1, s2 in difflib.SequenceMatcher(a=base, b=side, autojunk=False).get_opcodes():
        if op == "equal":
            out += [DiffLine(" ", line) for line in base[b1:b2]]
            continue
        out += [DiffLine("-", line) for line in base[b1:b2]]
        out += [DiffLine("+", line) for line in side[s1:s2]]
    return out


def clean_changes(conflict: ConflictFile) -> list[DiffLine]:
    """What git merged without conflict in this file: the base against git's result with every conflict
    region put back to its base text, so only the clean changes remain."""
    assert conflict.base_text is not None and conflict.merged_text is not None  # a text conflict: file_view checks
    merged = conflict.merged_text.split("\n")
    out: list[str] = []
    position = 0
    for hunk in conflict.hunks:
        out += merged[position : hunk["start"] - 1] + list(hunk["base"])
        position = hunk["end"]
    out += merged[position:]
    diff = difflib.unified_diff(conflict.base_text.split("\n"), out, "base", "merged", n=2, lineterm="")
    lines = list(diff)[2:]  # no file header
    return [DiffLine(line[:1] if line[:1] in "+-" else " ", line[1:] if line[:1] in "+- " else line)
            for line in lines]


def render_file(request, attempt: MergeAttempt, conflict: ConflictFile, can_review: bool) -> str:
    """A decided file's section and the page's summary (out of band): what one decision changes."""
    conflict = ConflictFile.objects.select_related("decided_by").get(pk=conflict.pk)
    attempt = MergeAttempt.objects.get(pk=attempt.pk)
    files = [file_view(f) for f in review.current_files(attempt).select_related("decided_by")]
    view = next(f for f in files if f.file.pk == conflict.pk)
    context = {"attempt": attempt, "can_review": can_review, "droppable": attempt.pending_sources[:1]}
    html = render_to_string("coordination/partials/review_file.html", {**context, "view": view}, request)
    html += render_to_string("coordination/partials/review_summary.html",
                             {**context, "summary": summary(attempt, files), "oob": True}, request)
    return html


def _origin_of(resolution: dict) -> str:
    tier, resolver = resolution.get("tier", ""), resolution.get("resolver", "")
    if tier == "llm":
        return "LLM"
    if tier == "human":
        return "person: " + resolver.removeprefix("human:")
    return f"resolver: {resolver}" if resolver else tier
