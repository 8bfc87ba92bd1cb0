"""What ``dagmerge run`` and ``dagmerge status`` print for people: task and join names, how long things
took, and for a ticket that waits for review the reason and the review's address.

``--json`` prints ``reports.ticket_report`` instead; nothing here is meant for scripts to parse.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from coordination.models import Event, Task, Ticket
from coordination.web import formats
from coordination.web.dashboard import NeedsYou, needs_you
from merges.models import MergeAttempt

QUIET = ("task.ready", "task.claimed", "task.created", "task.log", "join.registered", "join.updated",
         "join.synthesizing", "join.merging", "join.merged", "join.awaiting_review", "merge.ignored",
         "ticket.submitted", "ticket.head", "ticket.published", "ticket.merging", "ticket.overlap_warning",
         "ticket.serialized")


def review_url(attempt_id: int) -> str:
    """Where a person reviews a merge: the dashboard's address (DAGMERGE_API_URL) and the review page."""
    return settings.DAGMERGE_API_URL + reverse("coordination:review", args=[attempt_id])


def ticket_url(ticket_id: int) -> str:
    return settings.DAGMERGE_API_URL + reverse("coordination:ticket_detail", args=[ticket_id])


class Narrator:
    """Turns a ticket's events, in order, into one line each for people (or nothing, for the dull ones).

    Remembers which join leads to which task; durations, a failure's or a conflict's details are read from
    their rows, so they are the ones the dashboard and ``dagmerge status`` show."""

    def __init__(self, ticket_id: int):
        self.ticket_id = ticket_id
        self.continuation: dict[int, str] = {}
        self.ticket_running = False

    def line(self, event: Event) -> str | None:
        text = self._text(event.kind, event.payload)
        return f"{timezone.localtime(event.created_at):%H:%M:%S} {text}" if text else None

    def _text(self, kind: str, payload: dict) -> str | None:
        if "continuation" in payload and payload.get("join_id"):
            self.continuation[payload["join_id"]] = payload["continuation"]
        if kind in QUIET:
            return None
        family, _, state = kind.partition(".")
        if family == "task":
            return self._task(state, payload)
        if family == "merge":
            return self._merge(state, payload)
        if kind == "join.failed":
            strategy = payload.get("strategy", "all")
            return f"{self._join(payload.get('join_id'))}: failed, too few sources succeeded ({strategy})"
        if kind == "ticket.running":
            if self.ticket_running:
                return None
            self.ticket_running = True
            return f"ticket #{self.ticket_id} is running"
        if kind == "publish.failed":
            return f"publishing ticket/{self.ticket_id} to the source failed: {_first_line(payload.get('error', ''))}"
        if kind == "review.requested":
            action = str(payload.get("action", ""))
            what = {"approve": "approve it", "retry": "ask the agent again"}.get(
                str(action), f"{action} {payload.get('source')}")
            return f"merge #{payload.get('attempt_id')}: {payload.get('by')} asked to {what}"
        if kind == "review.decided":
            hunk = payload.get("hunk")
            where = f"hunk {hunk + 1} of {payload.get('path')}" if hunk is not None else payload.get("path")
            verb = "undid" if payload.get("action") == "undo" else "decided"
            choice = f": {payload['choice']}" if payload.get("choice") else ""
            return f"merge #{payload.get('attempt_id')}: {payload.get('by')} {verb} {where}{choice}"
        if kind == "review.approved":
            return f"merge #{payload.get('attempt_id')} approved by {payload.get('by')}"
        if kind == "review.dropped":
            return (f"merge #{payload.get('attempt_id')}: {payload.get('by')} dropped {payload.get('source')}; "
                    "it runs again on its own")
        if kind == "review.retried":
            return f"merge #{payload.get('attempt_id')}: {payload.get('by')} asked the agent again"
        if kind == "operation.retried":
            also = ", ".join(payload.get("reset") or [])
            return f"{payload.get('by')} retried task {payload.get('task')}" + (f" (and {also})" if also else "")
        if family == "ticket":
            return f"ticket #{self.ticket_id} {state.replace('_', ' ')}" + (
                f" by {payload['by']}" if payload.get("by") else "")
        return kind.replace(".", " ")

    def _task(self, state: str, payload: dict) -> str | None:
        key = payload.get("task", "?")
        if state == "running":
            title = _title(self.ticket_id, key)
            return f"task {key}: running" + (f"  ({title})" if title != key else "")
        if state in ("succeeded", "failed"):
            task = Task.objects.filter(ticket_id=self.ticket_id, key=key).first()
            took = _took(task) if task else ""
            if state == "succeeded":
                return f"task {key}: succeeded" + (f" in {took}" if took else "")
            error = _first_line(task.error) if task else ""
            return f"task {key}: failed" + (f" after {took}" if took else "") + f": {error}"
        if state == "waiting":
            return f"task {key}: waits for {payload.get('on')} (both claim {payload.get('example')})"
        if state == "pending" and payload.get("from") == "succeeded":
            return f"task {key}: dropped from its merge; it runs again on its own, on the merged head"
        if state == "pending" and payload.get("retry"):
            return f"task {key}: retried by {payload.get('by')}"
        if state == "pending":
            return None
        return f"task {key}: {state.replace('_', ' ')}"

    def _merge(self, state: str, payload: dict) -> str | None:
        join_id = payload.get("join_id")
        if state == "started":
            sources = ", ".join(payload.get("sources") or [])
            return f"{self._join(join_id)}: merging {sources}" if join_id else None
        attempt_id = payload.get("attempt_id")
        if not attempt_id:
            return None
        attempt = MergeAttempt.objects.filter(pk=attempt_id).values(
            "duration_ms", "pending_sources", "merge_order", "conflict_scores", "error", "review_reason",
            "task__key").first()
        if attempt is None:
            return None
        took = formats.duration(attempt["duration_ms"] / 1000)
        order = " then ".join(attempt["merge_order"])
        if state == "merged":
            hunks = sum(attempt["conflict_scores"].values())
            settled = "clean" if not hunks else f"{formats.plural(hunks, 'conflict hunk')} settled"
            if join_id:
                return f"{self._join(join_id)}: merged {order} in {took}, {settled}"
            return f"task {attempt['task__key']}: landed on ticket/{self.ticket_id} in {took}, {settled}"
        where = self._join(join_id) if join_id else f"task {attempt['task__key']}: landing"
        if state == "conflicted":
            done = f"{order} merged; " if order and join_id else ""
            source = attempt["pending_sources"][0] if attempt["pending_sources"] else "a source"
            return (f"{where}: {done}{source} conflicts, waits for a person: {attempt['review_reason']}"
                    f"\n         review it at {review_url(attempt_id)}")
        if state == "failed":
            return f"{where}: merge failed: {_first_line(attempt['error'])}"
        return None

    def _join(self, join_id: int | None) -> str:
        return f"join → {self.continuation.get(join_id, '?') if join_id is not None else '?'}"


def summary(ticket: Ticket) -> list[str]:
    """The last lines of ``dagmerge run``: how it ended and, when it waits for a person, where to go."""
    took = formats.between(ticket.created_at, ticket.finished_at or timezone.now())
    head = f"{ticket.branch} at {ticket.head_sha[:12]}"
    status = ticket.get_status_display()
    if ticket.status == "awaiting_review":
        return [f"ticket {ticket.pk} {status}: {head}", *_needs_you_lines(needs_you(ticket.pk))]
    lines = [f"ticket {ticket.pk} {status} after {took}: {head}" + (f" — {ticket.error}" if ticket.error else "")]
    if ticket.status == "failed":
        lines.append(f"  re-run the failed tasks from the ticket's page: {ticket_url(ticket.pk)}")
    return lines


def status_lines(ticket: Ticket) -> list[str]:
    """``dagmerge status``: the ticket, each task (status, how long it took), each join, what needs you."""
    tasks = list(ticket.tasks.order_by("id"))
    width = max((len(t.key) for t in tasks), default=4)
    title_width = min(max((len(t.title) for t in tasks), default=5), 40)
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.get_status_display()] = counts.get(task.get_status_display(), 0) + 1
    lines = [f"ticket {ticket.pk}: {ticket.title} — {ticket.get_status_display()} ({ticket.branch} at "
             f"{ticket.head_sha[:12]})",
             f"  {formats.plural(len(tasks), 'task')}: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    for task in tasks:
        lines.append(f"  {task.key:<{width}}  {task.title[:title_width]:<{title_width}}  "
                     f"{task.get_status_display():<10} {_took(task)}  {_first_line(task.error)}".rstrip())
    for join in ticket.joins.select_related("continuation").prefetch_related("sources"):
        attempt = join.merge_attempts.order_by("-id").values_list("id", flat=True).first()
        sources = ", ".join(sorted(s.key for s in join.sources.all()))
        lines.append(f"  join → {join.continuation.key} from {sources}: {join.get_status_display()}"
                     + (f", merge #{attempt}" if attempt else ""))
    if ticket.error:
        lines.append(f"  {ticket.error}")
    return lines + _needs_you_lines(needs_you(ticket.pk))


def _needs_you_lines(items: Iterable[NeedsYou]) -> list[str]:
    lines = []
    for item in items:
        lines.append(f"needs you: merge #{item.attempt_id} ({item.what}) waits for a person: {item.reason}")
        lines.append(f"  review it at {review_url(item.attempt_id)}")
    return lines


def _took(task: Task) -> str:
    if task.status in ("claimed", "running") and task.started_at:
        return f"{formats.between(task.started_at, timezone.now())} so far"
    if task.started_at and task.finished_at and task.finished_at >= task.started_at:
        return formats.between(task.started_at, task.finished_at)
    return ""


def _title(ticket_id: int, key: str) -> str:
    return Task.objects.filter(ticket_id=ticket_id, key=key).values_list("title", flat=True).first() or key


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text and text.strip() else ""
