"""The rows of the ticket page's task and join tables, written as strings like the DAG's SVG.

A 1,000-task page has a thousand task rows and as many join rows: one ``{% include %}`` per row made up
most of its rendering time, a string per row takes microseconds. The page, the websocket's row swaps and
the review page's watched rows all come from here, so a swapped row is what a reload would show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

from django.urls import reverse

from coordination.web import formats

RUNNING = ("claimed", "running")
NOTE_CHARS = 80


@dataclass
class TaskRow:
    pk: int
    key: str
    title: str
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    head_sha: str = ""
    error: str = ""
    waiting_on: str = ""
    href: str = ""
    rerun_of: int | None = None  # the merge it was dropped from: it runs again on its own

    @classmethod
    def of(cls, task, href: str, rerun_of: int | None = None) -> TaskRow:
        return cls(task.pk, task.key, task.title, task.status, task.started_at, task.finished_at, task.head_sha,
                   task.error, task.waiting_on, href, rerun_of)

    @property
    def took(self) -> str:
        """How long its run took, a live timer while it runs, or a dash."""
        if self.status in RUNNING and self.started_at:
            return formats.elapsed(self.started_at)
        if self.finished_at and self.started_at and self.finished_at >= self.started_at:
            return f'<span title="finished {formats.stamp(self.finished_at)}">' \
                   f"{formats.between(self.started_at, self.finished_at)}</span>"
        return "—"

    @property
    def note(self) -> str:
        if self.status == "pending" and self.waiting_on:
            return f'<span class="waiting">waits on {escape(self.waiting_on)}</span>'
        if self.rerun_of and self.status not in ("succeeded", "failed"):
            return f'<span class="waiting">runs again on its own: dropped from merge #{self.rerun_of}</span>'
        return escape(_truncate(self.error, NOTE_CHARS)) if self.error else ""


def task_row(row: TaskRow, oob: bool = False) -> str:
    swap = ' hx-swap-oob="true"' if oob else ""
    head = f'<code title="{row.head_sha}">{row.head_sha[:8]}</code>' if row.head_sha else "—"  # hex, from git
    return (
        f'<div id="task-row-{row.pk}" class="row" role="row"{swap}>'
        f'<span role="cell"><a href="{escape(row.href)}"><code>{escape(row.key)}</code></a></span>'
        f'<span role="cell">{escape(row.title)}</span>'
        f'<span role="cell">{badge(row.status)}</span>'
        f'<span role="cell">{formats.when(row.started_at)}</span>'
        f'<span role="cell">{row.took}</span>'
        f'<span role="cell">{head}</span>'
        f'<span role="cell" class="note error"{_title(row.error)}>{row.note}</span>'
        "</div>"
    )


def task_rows(rows: Iterable[TaskRow]) -> str:
    return "".join(task_row(row) for row in rows)


ATTEMPT_FIELDS = ("id", "join_id", "task_id", "task_key", "status", "merge_order", "conflict_scores", "hunks",
                  "duration_ms", "error", "review_reason", "result_sha", "started_at", "finished_at")


@dataclass
class AttemptCell:
    """One merge attempt, as a join row and the task merges table show it."""

    pk: int
    join_id: int | None
    task_id: int | None
    task_key: str | None
    status: str
    merge_order: list[str]
    conflict_scores: dict[str, int]
    hunks: int
    duration_ms: int
    error: str
    review_reason: str
    result_sha: str
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, values: dict) -> AttemptCell:
        """From ``.values(*ATTEMPT_FIELDS)``, with ``hunks`` the sum of its conflict files' hunks."""
        fields = {name: values[name] for name in ATTEMPT_FIELDS if name != "id"}
        return cls(pk=values["id"], **{**fields, "hunks": values["hunks"] or 0})


@dataclass
class JoinRow:
    pk: int
    status: str
    strategy: str
    continuation_id: int
    continuation: str
    sources: list[str]
    attempts: list[AttemptCell] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (source, who dropped it)

    @property
    def latest(self) -> AttemptCell | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def clean(self) -> bool:
        """Merged at the first try without a conflict or a person: nothing to look at, collapsed."""
        latest = self.latest
        return (self.status == "merged" and len(self.attempts) == 1 and latest is not None and not latest.hunks
                and not self.dropped)


@dataclass
class Links:
    """URLs of a ticket's pages, each reversed once: rows are many, ``reverse`` is slow. A task's link
    is written once per page too (a task is a source of several joins)."""

    task: Callable[[str], str]
    merge: Callable[[int], str]
    review: Callable[[int], str]
    admin_merge: Callable[[int], str] | None = None  # staff only
    _task_links: dict[str, str] = field(default_factory=dict)

    def task_link(self, key: str) -> str:
        link = self._task_links.get(key)
        if link is None:
            link = self._task_links[key] = f'<a href="{escape(self.task(key))}"><code>{escape(key)}</code></a>'
        return link

    @classmethod
    def for_ticket(cls, ticket_id: int, staff: bool = False) -> Links:
        task = reverse("coordination:task_detail", args=[ticket_id, "KEY"])
        return cls(task=lambda key: task.replace("KEY", key), merge=_by_pk("coordination:merge_attempt"),
                   review=_by_pk("coordination:review"),
                   admin_merge=_by_pk("admin:merges_mergeattempt_change") if staff else None)


def join_row(row: JoinRow, links: Links, oob: bool = False) -> str:
    swap = ' hx-swap-oob="true"' if oob else ""
    classes = "row clean" if row.clean else "row"
    sources = ", ".join(links.task_link(key) for key in row.sources)
    latest = row.latest
    return (
        f'<div id="join-{row.pk}" class="{classes}" role="row" data-status="{row.status}"{swap}>'
        f'<span role="cell">{sources} → {links.task_link(row.continuation)}</span>'
        f'<span role="cell">{badge(row.status)}</span>'
        f'<span role="cell">{escape(row.strategy)}</span>'
        f'<span role="cell">{_merges(row, links)}</span>'
        f'<span role="cell">{_order(latest)}</span>'
        f'<span role="cell">{_scores(latest)}</span>'
        f'<span role="cell" class="num">{latest.hunks if latest else "—"}</span>'
        f'<span role="cell">{formats.duration(latest.duration_ms / 1000) if latest else "—"}</span>'
        f'<span role="cell" class="note">{_join_note(row)}</span>'
        "</div>"
    )


def join_rows(rows: Iterable[JoinRow], links: Links) -> str:
    return "".join(join_row(row, links) for row in rows)


def chain_rows(attempts: Iterable[AttemptCell], links: Links) -> str:
    """The merges that landed one task's branch (no join): a row each."""
    out = []
    for a in attempts:
        result = f'<code title="{a.result_sha}">{a.result_sha[:8]}</code>' if a.result_sha else "—"
        review = (f' <a class="button small" href="{links.review(a.pk)}">review</a>'
                  if a.status == "conflicted" else "")
        admin = (f' <a class="muted" href="{links.admin_merge(a.pk)}" title="in the admin">admin</a>'
                 if links.admin_merge else "")
        out.append(
            f'<div class="row" role="row"><span role="cell"><a href="{links.merge(a.pk)}">#{a.pk}</a>{admin}</span>'
            f'<span role="cell">{links.task_link(a.task_key) if a.task_key else "—"}</span>'
            f'<span role="cell">{badge(a.status)}{review}</span>'
            f'<span role="cell">{_scores(a)}</span><span role="cell" class="num">{a.hunks}</span>'
            f'<span role="cell">{result}</span><span role="cell">{formats.duration(a.duration_ms / 1000)}</span>'
            f'<span role="cell" class="note error"{_title(a.error)}>{escape(_truncate(a.error, NOTE_CHARS))}'
            "</span></div>")
    return "".join(out)


def badge(status: str) -> str:
    return f'<span class="badge st-{status}">{status.replace("_", " ")}</span>'


def _merges(row: JoinRow, links: Links) -> str:
    if not row.attempts:
        return '<span class="muted">not yet</span>'
    parts = []
    for attempt in row.attempts:
        link = f'<a href="{links.merge(attempt.pk)}" title="{attempt.status}">#{attempt.pk}</a>'
        if links.admin_merge:
            link += f' <a class="muted" href="{links.admin_merge(attempt.pk)}" title="in the admin">admin</a>'
        parts.append(link)
    latest = row.attempts[-1]
    if latest.status == "conflicted" and row.status == "awaiting_review":
        parts.append(f'<a class="button small" href="{links.review(latest.pk)}">review</a>')
    return " ".join(parts)


def _order(attempt: AttemptCell | None) -> str:
    if not attempt or not attempt.merge_order:
        return "—"
    return " → ".join(f"<code>{escape(name)}</code>" for name in attempt.merge_order)


def _scores(attempt: AttemptCell | None) -> str:
    if not attempt or not attempt.conflict_scores:
        return "—"
    return ", ".join(f"<code>{escape(name)}</code> {hunks}" for name, hunks in attempt.conflict_scores.items())


def _join_note(row: JoinRow) -> str:
    notes = [f"<code>{escape(source)}</code> dropped by {escape(by)}: it runs again on its own"
             for source, by in row.dropped]
    latest = row.latest
    if latest and (latest.error or (row.status == "awaiting_review" and latest.review_reason)):
        text = latest.error or latest.review_reason
        notes.append(f'<span title="{escape(text)}">{escape(_truncate(text, NOTE_CHARS))}</span>')
    return "; ".join(notes)




def _by_pk(name: str) -> Callable[[int], str]:
    marker = 987654321
    url = reverse(name, args=[marker])
    return lambda pk: url.replace(str(marker), str(pk))


def _title(text: str) -> str:
    """A tooltip with the whole text, or nothing for no text."""
    return f' title="{escape(text)}"' if text else ""


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
