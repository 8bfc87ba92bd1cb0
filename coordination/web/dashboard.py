"""What the dashboard's ticket pages show, read in a fixed number of queries whatever the number of tasks.

Pages and websocket pushes (``liveview``) build their fragments from the functions here, so a pushed
fragment is what a reload would show. A page's ``seq`` is read before its rows: the rows are at least as
new as the sequence number, so catching up from it can repeat a change but never miss one.

A big ticket's page is mostly its graph and tables; they are kept in the cache under the ticket's version
(see ``drawn``), so reloading a thousand-task ticket that has not changed costs a few queries.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Q, Sum
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from coordination.domain import states
from coordination.models import Event, Join, Task, Ticket
from coordination.web import dagsvg, merge_pages, rows, timeline
from merges.models import MergeAttempt, ReviewAction

PARTIALS = "coordination/partials/"
TICKETS_PER_PAGE = 50
# Columns a task row never shows; a log or a result can be megabytes, times a thousand tasks.
HEAVY_TASK_FIELDS = ("log", "result", "synthesis_context", "instructions", "command")
ROW_FIELDS = ("id", "key", "title", "status", "started_at", "finished_at", "head_sha", "error", "waiting_on")
# Sequences can commit out of order (PostgreSQL), so a reconnecting page also takes a fresh
# snapshot when anything happened this recently, even below the id it last saw.
RECENT = timedelta(seconds=10)
PUBLISH_EVENTS = ("publish.failed", "ticket.published")  # the newest says whether the source is current
# From this many tasks the drawn parts of a ticket's page are cached (smaller ones take a few ms to draw).
CACHED_FROM_TASKS = 200
CACHE_SECONDS = 600
# Order of the progress bar's segments; claimed work counts as running.
PROGRESS_ORDER = ("succeeded", "running", "ready", "pending", "blocked", "failed", "cancelled")


@dataclass
class Progress:
    total: int
    counts: dict[str, int]

    @property
    def succeeded(self) -> int:
        return self.counts.get("succeeded", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def segments(self) -> list[tuple[str, int, float]]:
        """(status, count, percent of all tasks) for each status present, in bar order."""
        counts = Counter(self.counts)
        counts["running"] += counts.pop("claimed", 0)
        return [(s, counts[s], 100 * counts[s] / self.total) for s in PROGRESS_ORDER if counts.get(s)]


@dataclass
class NeedsYou:
    """A merge of this ticket that waits for a person: what the banner on the ticket says."""

    attempt_id: int
    what: str  # "join → D" or "the branch of B"
    reason: str


@dataclass
class Dropped:
    join_id: int
    attempt_id: int
    by: str


@dataclass
class JoinsSummary:
    total: int
    clean: int
    attention: int  # waiting for a person or failed


def ticket_list(page_number: str | None) -> Page:
    tickets = Ticket.objects.select_related("repository").annotate(
        total=Count("tasks"), succeeded=Count("tasks", filter=Q(tasks__status="succeeded"))).order_by("-id")
    return Paginator(tickets, TICKETS_PER_PAGE).get_page(page_number)


def ticket_page(ticket_id: int, staff: bool = False) -> dict[str, Any]:
    """Everything the ticket page shows: a handful of queries whatever the number of tasks."""
    seq, version = ticket_version(ticket_id)
    header = _header(ticket_id)
    return {
        **header,
        "seq": seq,
        **drawn(ticket_id, staff, version),
        "task_statuses": states.TASK.states,
        "join_statuses": states.JOIN.states,
    }


def ticket_version(ticket_id: int) -> tuple[int, tuple[int, int]]:
    """The newest event's id (the page's ``seq``), and the version of what the page draws: the newest id
    and the number of the events but log lines (which the page does not show). Every state change writes
    an event in its own transaction, so an unchanged version draws the same; the count catches an event
    that commits below the newest id, as PostgreSQL's sequences allow."""
    drawn_by = ~Q(kind="task.log")
    found = Event.objects.filter(ticket_id=ticket_id).aggregate(
        seq=Max("id"), last=Max("id", filter=drawn_by), n=Count("id", filter=drawn_by))
    return found["seq"] or 0, (found["last"] or 0, found["n"])


def drawn(ticket_id: int, staff: bool, version: tuple[int, int]) -> dict[str, Any]:
    """The graph, the timeline, the task and join tables, the merges: what a big ticket's page is made of.
    Taken from the cache when the ticket's version is the one they were drawn at (read before them, so they
    are at least that new); the timeline is drawn again while anything runs (its bars end at "now")."""
    key = f"dagmerge:ticket-page:{ticket_id}:{int(staff)}"
    cached = cache.get(key)
    if cached is not None and cached[0] == version and cached[1]["timeline_svg"] is not None:
        return cached[1]
    links = rows.Links.for_ticket(ticket_id, staff)
    dropped = dropped_sources(ticket_id)
    tasks = task_rows(ticket_id, links, dropped)
    attempts = attempt_cells(ticket_id)
    joins = join_rows(ticket_id, links, attempts, dropped)
    timeline = timeline_svg(tasks, attempts, joins, links)
    if cached is not None and cached[0] == version:
        return {**cached[1], "timeline_svg": timeline}
    parts = {
        "dag_svg": dag_svg(ticket_id, tasks, joins, dropped),
        "timeline_svg": timeline,
        "task_rows": rows.task_rows(tasks),
        "task_count": len(tasks),
        "join_rows": rows.join_rows(joins, links),
        "joins_summary": joins_summary(joins),
        "chain_rows": rows.chain_rows([a for a in attempts if a.join_id is None], links),
        "merge_chart": merge_pages.ticket_chart(ticket_id),
    }
    if len(tasks) >= CACHED_FROM_TASKS:
        running = any(t.status in rows.RUNNING for t in tasks) or any(a.status == "running" for a in attempts)
        cache.set(key, (version, {**parts, "timeline_svg": None if running else timeline}), CACHE_SECONDS)
    return parts


def task_page(ticket_id: int, key: str) -> dict[str, Any]:
    """The task page: the task with its log, result and synthesis context, and the ticket's header."""
    seq = latest_seq(ticket_id)
    task = get_object_or_404(Task, ticket_id=ticket_id, key=key)
    return {
        **_header(ticket_id),
        "task": task,
        "seq": seq,
        **_task_detail(task),
    }


def latest_seq(ticket_id: int) -> int:
    return Event.objects.filter(ticket_id=ticket_id).aggregate(seq=Max("id"))["seq"] or 0


def task_url(ticket_id: int, key: str) -> str:
    return reverse("coordination:task_detail", args=[ticket_id, key])


def task_rows(ticket_id: int, links: rows.Links, dropped: dict[int, Dropped],
              ids: set[int] | None = None) -> list[rows.TaskRow]:
    tasks = Task.objects.filter(ticket_id=ticket_id)
    if ids is not None:
        tasks = tasks.filter(pk__in=ids)
    out = []
    for pk, key, title, status, started, finished, head, error, waiting in tasks.order_by("id").values_list(
            *ROW_FIELDS):
        drop = dropped.get(pk)
        out.append(rows.TaskRow(pk, key, title, status, started, finished, head, error, waiting, links.task(key),
                                drop.attempt_id if drop else None))
    return out


def _header(ticket_id: int) -> dict[str, Any]:
    """The ticket header: raises Http404 for an unknown ticket, so it is read first."""
    ticket = get_object_or_404(Ticket.objects.select_related("repository"), pk=ticket_id)
    publish = Event.objects.filter(ticket_id=ticket_id, kind__in=PUBLISH_EVENTS).last()
    stuck = ticket.published_sha != ticket.head_sha  # a failure the source has since caught up with is over
    failed = publish if publish is not None and publish.kind == "publish.failed" and stuck else None
    return {
        "ticket": ticket,
        "progress": _progress(ticket_id),
        "publish_error": failed.payload.get("error", "").strip() if failed else "",
        "needs_you": needs_you(ticket_id),
    }


def needs_you(ticket_id: int) -> list[NeedsYou]:
    attempts = merge_pages.awaiting_review().filter(ticket_id=ticket_id).order_by("id").values_list(
        "id", "join__continuation__key", "task__key", "review_reason")
    return [NeedsYou(pk, f"join → {continuation}" if continuation else f"the branch of {task}", reason)
            for pk, continuation, task, reason in attempts]


def _progress(ticket_id: int) -> Progress:
    counts = dict(Task.objects.filter(ticket_id=ticket_id).order_by().values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    return Progress(sum(counts.values()), counts)


def dropped_sources(ticket_id: int) -> dict[int, Dropped]:
    """Tasks a reviewer dropped from a join's merge, by task id: they run again on their own. A drop that
    was asked for but not carried out yet (the task is still one of the join's sources) does not count."""
    actions = ReviewAction.objects.filter(attempt__ticket_id=ticket_id, action="drop_source").values_list(
        "attempt__join_id", "attempt_id", "detail", "user__username")
    by_key = {detail.get("source"): Dropped(join_id, attempt_id, user or "someone")
              for join_id, attempt_id, detail, user in actions if join_id}
    if not by_key:
        return {}
    ids = dict(Task.objects.filter(ticket_id=ticket_id, key__in=list(by_key)).values_list("id", "key"))
    still = set(Join.sources.through.objects.filter(task_id__in=list(ids)).values_list("task_id", "join_id"))
    return {pk: by_key[key] for pk, key in ids.items() if (pk, by_key[key].join_id) not in still}


def dag_svg(ticket_id: int, tasks: list[rows.TaskRow] | None = None, joins: list[rows.JoinRow] | None = None,
            dropped: dict[int, Dropped] | None = None) -> str:
    if dropped is None:
        dropped = dropped_sources(ticket_id)
    if tasks is None:
        tasks = [rows.TaskRow(*row) for row in Task.objects.filter(ticket_id=ticket_id).order_by("id")
                 .values_list("id", "key", "title", "status")]
    marks = ([dagsvg.JoinMark(j.pk, j.continuation_id, j.status) for j in joins] if joins is not None else
             [dagsvg.JoinMark(*row) for row in Join.objects.filter(ticket_id=ticket_id).values_list(
                 "id", "continuation_id", "status")])
    edges = Task.depends_on.through.objects.filter(from_task__ticket_id=ticket_id).values_list(
        "to_task_id", "from_task_id")
    # reverse() once, not once per node: this is the hot loop of a 1,000-task page.
    pattern = task_url(ticket_id, "KEY")
    return dagsvg.render(
        [dagsvg.Node(t.pk, t.key, t.title, t.status, rerun=t.pk in dropped) for t in tasks],
        list(edges), marks, href=lambda node: pattern.replace("KEY", node.key),
        dropped={pk: d.join_id for pk, d in dropped.items()},
    )


def attempt_cells(ticket_id: int, join_ids: set[int] | None = None) -> list[rows.AttemptCell]:
    """The ticket's merges, oldest first (all of them, or those of some joins): one query."""
    attempts = MergeAttempt.objects.filter(ticket_id=ticket_id)
    if join_ids is not None:
        attempts = attempts.filter(join_id__in=join_ids)
    values = attempts.order_by("id").annotate(hunks=Sum("conflict_files__hunk_count"), task_key=F("task__key"))
    return [rows.AttemptCell.of(row) for row in values.values(*rows.ATTEMPT_FIELDS)]


def join_rows(ticket_id: int, links: rows.Links, attempts: list[rows.AttemptCell], dropped: dict[int, Dropped],
              join_ids: set[int] | None = None) -> list[rows.JoinRow]:
    joins = Join.objects.filter(ticket_id=ticket_id).order_by("id")
    sources = Join.sources.through.objects.filter(join__ticket_id=ticket_id).order_by("task__key")
    if join_ids is not None:
        joins = joins.filter(pk__in=join_ids)
        sources = sources.filter(join_id__in=join_ids)
    keys: dict[int, list[str]] = {}
    for join_id, key in sources.values_list("join_id", "task__key"):
        keys.setdefault(join_id, []).append(key)
    by_join: dict[int, list[rows.AttemptCell]] = {}
    for attempt in attempts:
        if attempt.join_id is not None:
            by_join.setdefault(attempt.join_id, []).append(attempt)
    dropped_from: dict[int, list[tuple[str, str]]] = {}
    if dropped:
        names = dict(Task.objects.filter(pk__in=list(dropped)).values_list("id", "key"))
        for pk, drop in dropped.items():
            dropped_from.setdefault(drop.join_id, []).append((names[pk], drop.by))
    return [rows.JoinRow(pk, status, strategy, continuation_id, key, keys.get(pk, []), by_join.get(pk, []),
                         dropped_from.get(pk, []))
            for pk, status, strategy, continuation_id, key in joins.values_list(
                "id", "status", "merge_strategy", "continuation_id", "continuation__key")]


def joins_summary(joins: list[rows.JoinRow]) -> JoinsSummary:
    attention = sum(j.status in ("awaiting_review", "failed") for j in joins)
    return JoinsSummary(len(joins), sum(j.clean for j in joins), attention)


def timeline_svg(tasks: list[rows.TaskRow], attempts: list[rows.AttemptCell], joins: list[rows.JoinRow],
                 links: rows.Links) -> str:
    now = timezone.now()
    continuation_of = {j.pk: j.continuation_id for j in joins}
    lanes = {t.pk: timeline.Lane(t.key, t.title, t.href) for t in tasks}
    for task in tasks:  # a pending task may keep the start of a run it is about to repeat: not drawn
        if task.started_at and task.status in rows.RUNNING:
            lanes[task.pk].spans.append(timeline.Span(task.started_at, None, task.status, task.href, "run"))
        elif task.started_at and task.finished_at and task.finished_at >= task.started_at:
            lanes[task.pk].spans.append(timeline.Span(task.started_at, task.finished_at, task.status, task.href,
                                                      "run"))
    for attempt in attempts:
        owner = continuation_of.get(attempt.join_id) if attempt.join_id is not None else attempt.task_id
        lane = lanes.get(owner) if owner is not None else None
        if lane is None:
            continue
        end = attempt.finished_at or (None if attempt.status == "running" else
                                      attempt.started_at + timedelta(milliseconds=attempt.duration_ms))
        lane.spans.append(timeline.Span(attempt.started_at, end, attempt.status, links.merge(attempt.pk),
                                        "merge in" if attempt.join_id else "landing"))
    return timeline.render(list(lanes.values()), now)


def _task_detail(task: Task) -> dict[str, Any]:
    def pretty(value: Any) -> str:
        return "" if value is None else json.dumps(value, indent=2, sort_keys=True, default=str)
    return {
        "parents": sorted(task.depends_on.values_list("key", flat=True)),
        "claims": list(task.claims.all()),
        "result_json": pretty(task.result),
        "synthesis_json": pretty(task.synthesis_context),
    }
