"""What the review page shows for a merge attempt: the open round to decide, and every round decided before.

Read-only: ``merges.review`` records decisions and keeps the gate, ``merges.provenance`` says who settled
what; this module lays out what a reviewer needs (both sides as diffs against the base with the lines
around them, what each side's task meant, the result so far) and renders the fragments an action or a
live event replaces. A round stays on the page once decided: approving turns it into a read-only record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from coordination.models import Task
from coordination.review import actions, diffs
from coordination.review.diffs import DiffLine
from coordination.review.state import summary
from coordination.web import dashboard
from merges import provenance, review
from merges.engine.conflicts import MARKER_SIZE, TEXT_KINDS
from merges.models import ConflictFile, MergeAttempt, ReviewAction

LARGE_LINES = 3000  # past this a file is shown as its hunks only: no whole-file diffs, no whole-file editor
LARGE_CHARS = 300_000
HISTORY = 30  # review actions listed on the page
PARTIALS = "coordination/partials/"

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
class Stale:
    """A decision refused because another reviewer decided the same place after the page showed it: the
    reason, where (a hunk's index, or None for the whole file) and the text this reviewer had written."""

    message: str
    hunk: int | None
    text: str | None


@dataclass
class Side:
    """Where one side of a conflict came from: a task (title, instructions), or the ticket branch."""

    label: str
    tasks: list[Task]


@dataclass
class HunkView:
    index: int
    record: provenance.HunkRecord
    resolution: dict
    ours_pane: list[DiffLine]  # each with the lines around the hunk
    base_pane: list[DiffLine]
    theirs_pane: list[DiffLine]
    proposal: list[str] | None  # what a resolver or the agent proposed, when it still stands
    edit_text: str
    version: str  # what the page saw (``review.version``): its forms send it back
    stale: Stale | None = None

    @property
    def line(self) -> int:
        return self.record.line

    @property
    def ours_html(self) -> SafeString:
        return diffs.pane_html(self.ours_pane, "(nothing)")

    @property
    def base_html(self) -> SafeString:
        return diffs.pane_html(self.base_pane, "(empty: both sides added here)")

    @property
    def theirs_html(self) -> SafeString:
        return diffs.pane_html(self.theirs_pane, "(nothing)")

    @property
    def decided(self) -> bool:
        return review.is_decided(self.resolution)

    @property
    def proposal_text(self) -> str:
        return "\n".join(self.proposal or [])

    @property
    def result_text(self) -> str:
        return "\n".join(self.resolution.get("lines") or [])

    @property
    def origin(self) -> str:
        """Who proposed what this hunk holds now: a resolver's name, the LLM, a person, or git (nothing)."""
        proposer = self.resolution.get("previous") or {} if self.resolution.get("tier") == "human" else self.resolution
        return provenance.origin(proposer) or "git (no proposal)"

    @property
    def can_undo(self) -> bool:
        return self.resolution.get("tier") == "human"


@dataclass
class FileView:
    file: ConflictFile
    hunks: list[HunkView]
    remaining: int
    result: str | None
    large: bool
    open: bool  # in the round waiting for decisions: the page offers them
    records: list[provenance.HunkRecord] = field(default_factory=list)
    clean_diff: list[DiffLine] = field(default_factory=list)  # non-conflicting changes, already applied
    version: str = ""
    last_change: str = ""  # who decided what here last, in words: what another reviewer's page tells
    stale: Stale | None = None

    @property
    def clean_html(self) -> SafeString:
        return diffs.pane_html(self.clean_diff)

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
    def whole_record(self) -> provenance.HunkRecord | None:
        return self.records[0] if self.records and self.records[0].whole_file else None

    @property
    def deleted_by(self) -> str:
        """For modify/delete: "ours" or "theirs", the side without the file."""
        if not self.file.ours_oid:
            return "ours"
        return "theirs" if not self.file.theirs_oid else ""

    @property
    def next_hunk(self) -> HunkView | None:
        return next((h for h in self.hunks if not h.decided), None)

    @property
    def result_rows(self) -> int:
        return min(max((self.result or "").count("\n") + 1, 4), 24)

    @property
    def markers(self) -> int:
        """Conflicts still marked in the result (counted again in the browser as the text is edited)."""
        return sum(1 for line in (self.result or "").split("\n") if line.startswith("<" * MARKER_SIZE))


@dataclass
class RoundView:
    """One stop for a person: the source that conflicted, its files, and what ended the round."""

    number: int
    files: list[FileView]
    ours: Side
    theirs: Side
    open: bool  # waiting for decisions now
    closing: ReviewAction | None  # the approve or drop that ended it
    pending: dict  # the action queued on it and not carried out yet

    @property
    def anchor(self) -> str:
        return f"round-{self.number}"


def page(attempt_id: int) -> dict[str, Any]:
    attempt = get_object_or_404(MergeAttempt.objects.select_related("ticket__repository", "join__continuation",
                                                                    "task"), pk=attempt_id)
    seq = dashboard.latest_seq(attempt.ticket_id)  # before the rows: catching up may repeat, never miss
    return {
        **dashboard._header(attempt.ticket_id),
        "seq": seq,
        **review_context(attempt),
        "watched": Task.objects.filter(pk__in=watched_tasks(attempt)).defer(*dashboard.HEAVY_TASK_FIELDS),
    }


def watched_tasks(attempt: MergeAttempt) -> list[int]:
    """The tasks whose rows the page shows and keeps live: the sources, and the continuation."""
    names = [i["name"] for i in attempt.incoming]
    ids = list(Task.objects.filter(ticket_id=attempt.ticket_id, key__in=names).values_list("pk", flat=True))
    continuation = attempt.join.continuation_id if attempt.join else attempt.task_id
    return ids + ([continuation] if continuation else [])


def review_context(attempt: MergeAttempt) -> dict[str, Any]:
    """What the title, the rounds and the summary show: the fragments a review action or event replaces."""
    tasks = {t.key: t for t in Task.objects.filter(ticket_id=attempt.ticket_id,
                                                   key__in=[i["name"] for i in attempt.incoming])
             .only("id", "key", "title", "instructions", "status", "ticket_id")}
    rounds = rounds_of(attempt, tasks)
    current = next((r for r in rounds if r.open), None)
    done = history(attempt)
    if current is not None:
        for view in current.files:
            last = next((a for a in done if a.conflict_file_id == view.file.pk), None)
            view.last_change = _in_words(last) if last else ""
    return {
        "attempt": attempt,
        "continuation": attempt.join.continuation if attempt.join else attempt.task,
        "rounds": rounds,
        "summary": summary(attempt, current.files if current else [], rounds, actions.retry_blocked(attempt)),
        "droppable": attempt.pending_sources[:1],
        "history": done,
    }


def _in_words(action: ReviewAction) -> str:
    """"dave decided hunk 2: theirs": what the page of a reviewer editing the same file says changed."""
    hunk = action.detail.get("hunk")
    where = f" hunk {hunk + 1}" if hunk is not None else ""
    choice = f": {action.choice_label}" if action.detail.get("choice") else ""  # type: ignore[attr-defined]
    return f"{action.user or 'someone'} {action.label}{where}{choice}"  # type: ignore[attr-defined]


def history(attempt: MergeAttempt) -> list[ReviewAction]:
    """The newest review actions, each with ``label``: what it did, in words."""
    rows = list(ReviewAction.objects.filter(attempt=attempt).select_related("user", "conflict_file")
                .order_by("-id")[:HISTORY])
    for row in rows:
        choice = row.detail.get("choice", "")
        row.label = provenance.ACTIONS.get(row.action, row.action)  # type: ignore[attr-defined]
        row.choice_label = provenance.CHOICES.get(choice, choice)  # type: ignore[attr-defined]
    return rows


def rounds_of(attempt: MergeAttempt, tasks: dict[str, Task]) -> list[RoundView]:
    """Every round of the attempt: the open one first (it is what the page is for), then the others,
    newest first. A round is open while the attempt waits for a person on it."""
    files = list(attempt.conflict_files.select_related("decided_by").order_by("round", "path"))
    closings = provenance.round_closings(attempt)
    numbers = {f.round for f in files} | set(closings)
    waiting = attempt.status == "conflicted"
    if waiting:
        numbers.add(attempt.round)
    pending = attempt.pending_action if attempt.status == "running" else {}
    rounds = []
    for number in sorted(numbers, reverse=True):
        is_open = waiting and number == attempt.round
        mine = [file_view(f, is_open) for f in files if f.round == number]
        if mine:
            source = mine[0].file.source
        else:  # a round with no file (a failed verify command): the source pending when it is open
            source = attempt.pending_sources[0] if is_open and attempt.pending_sources else ""
        merged_before = attempt.merge_order[:attempt.merge_order.index(source)] if source in attempt.merge_order \
            else attempt.merge_order
        ours = Side("the ticket branch" + (" with " + ", ".join(merged_before) if merged_before else ""),
                    [tasks[n] for n in merged_before if n in tasks])
        rounds.append(RoundView(number, mine, ours, Side(source, [tasks[source]] if source in tasks else []),
                                is_open, closings.get(number),
                                pending if pending.get("round") == number else {}))
    rounds.sort(key=lambda r: not r.open)  # stable: the open round first, the rest stay newest first
    return rounds


def file_view(conflict: ConflictFile, is_open: bool = True) -> FileView:
    resolutions = review.hunk_decisions(conflict)
    records = provenance.hunk_records(conflict)
    text = conflict.merged_text or ""
    large = text.count("\n") > LARGE_LINES or len(text) > LARGE_CHARS
    merged = text.split("\n")
    hunks = []
    for index, (hunk, resolution) in enumerate(zip(conflict.hunks, resolutions, strict=True)):
        decided = review.is_decided(resolution)
        before, after = diffs.around(merged, conflict.hunks, index) if text else ([], [])
        current = resolution.get("lines") if decided else hunk["ours"] + hunk["theirs"]
        hunks.append(HunkView(
            index=index, record=records[index], resolution=resolution,
            ours_pane=before + diffs.line_diff(hunk["base"], hunk["ours"]) + after,
            base_pane=before + [DiffLine(" ", line) for line in hunk["base"]] + after,
            theirs_pane=before + diffs.line_diff(hunk["base"], hunk["theirs"]) + after,
            proposal=resolution.get("lines") if resolution.get("tier") not in ("", "human") else None,
            edit_text="\n".join(current or []), version=review.version(conflict, index),
        ))
    view = FileView(conflict, hunks, review.remaining_hunks(conflict), review.result_text(conflict), large, is_open,
                    records, version=review.version(conflict))
    if not large and conflict.base_text is not None and conflict.merged_text is not None and conflict.hunks:
        view.clean_diff = diffs.clean_changes(conflict.base_text, conflict.merged_text, conflict.hunks)
    return view


def render_file(request: HttpRequest, attempt_id: int, file_id: int, can_review: bool,
                stale: Stale | None = None) -> str:
    """A decided file's section, and the page's summary and history (out of band): what one decision
    changes. ``stale``: the decision was refused as made on an old view: the section says so and keeps the
    text that was not saved."""
    attempt = MergeAttempt.objects.select_related("ticket", "join__continuation", "task").get(pk=attempt_id)
    context = {**review_context(attempt), "can_review": can_review}
    view = next(f for r in context["rounds"] for f in r.files if f.file.pk == file_id)
    if stale is not None and stale.hunk is not None and stale.hunk < len(view.hunks):
        view.hunks[stale.hunk].stale = stale
    elif stale is not None:
        view.stale = stale
    html = render_to_string(PARTIALS + "review_file.html", {**context, "view": view}, request)
    return html + _summary_and_history(request, context)


def render_decisions(attempt_id: int, file_ids: set[int], can_review: bool) -> str:
    """What another reviewer's decisions changed, for a page that watches the review live: those files'
    sections, the summary and the history, all out of band. The page keeps a section being edited (and
    says why) rather than swap it (``dagmerge-review.js``)."""
    attempt = MergeAttempt.objects.select_related("ticket", "join__continuation", "task").get(pk=attempt_id)
    context = {**review_context(attempt), "can_review": can_review}
    views = [f for r in context["rounds"] for f in r.files if f.file.pk in file_ids]
    html = "".join(render_to_string(PARTIALS + "review_file.html", {**context, "view": view, "oob": True})
                   for view in views)
    return html + _summary_and_history(None, context)


def _summary_and_history(request: HttpRequest | None, context: dict[str, Any]) -> str:
    return (render_to_string(PARTIALS + "review_summary.html", {**context, "oob": True}, request)
            + render_to_string(PARTIALS + "review_history.html", {**context, "oob": True}, request))


def render_review(request: HttpRequest | None, attempt_id: int, can_review: bool, *, oob: bool,
                  refused: list[str] | None = None) -> str:
    """The review's summary, title and rounds: after an action, or when an event moved the attempt on.
    ``oob``: all of them out of band (a live push); else the summary first, as the swap's own target.
    A refused action changes nothing but the summary (and leaves any text being edited alone)."""
    attempt = MergeAttempt.objects.select_related("ticket", "join__continuation", "task").get(pk=attempt_id)
    context = {**review_context(attempt), "can_review": can_review, "oob": True}
    if refused is not None:
        context["summary"].problems = refused
        return render_to_string(PARTIALS + "review_summary.html", {**context, "oob": oob, "refused": True}, request)
    return (render_to_string(PARTIALS + "review_summary.html", {**context, "oob": oob}, request)
            + render_to_string(PARTIALS + "review_title.html", context, request)
            + render_to_string(PARTIALS + "review_rounds.html", context, request))
