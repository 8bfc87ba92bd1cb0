"""What the dashboard shows, read in a fixed number of queries, and the fragments the live view pushes.

Pages and websocket pushes render the same partials from here, so a pushed fragment is what a reload
would show. A page's ``seq`` is read before its rows: the rows are at least as new as the sequence
number, so catching up from it can repeat a change but never miss one.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Max, Q, Sum
from django.db.models.functions import Length, Substr
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from coordination.domain import states
from coordination.models import Event, Join, Task, Ticket
from coordination.web import dagsvg, merge_pages
from merges.models import MergeAttempt

PARTIALS = "coordination/partials/"
TICKETS_PER_PAGE = 50
# Columns a task row never shows; a log or a result can be megabytes, times a thousand tasks.
HEAVY_TASK_FIELDS = ("log", "result", "synthesis_context", "instructions", "command")
# Sequences can commit out of order (PostgreSQL), so a reconnecting page also takes a fresh
# snapshot when anything happened this recently, even below the id it last saw.
RECENT = timedelta(seconds=10)
PUBLISH_EVENTS = ("publish.failed", "ticket.published")  # the newest says whether the source is current
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
    def segments(self) -> list[tuple[str, int, float]]:
        """(status, count, percent of all tasks) for each status present, in bar order."""
        counts = Counter(self.counts)
        counts["running"] += counts.pop("claimed", 0)
        return [(s, counts[s], 100 * counts[s] / self.total) for s in PROGRESS_ORDER if counts.get(s)]


@dataclass
class JoinCard:
    join: Join
    continuation_key: str
    source_keys: list[str]
    attempts: list[MergeAttempt]
    href_pattern: str = ""  # a task's page with KEY for its key

    @property
    def continuation_href(self) -> str:
        return self.href_pattern.replace("KEY", self.continuation_key)

    @property
    def sources(self) -> list[tuple[str, str]]:
        return [(key, self.href_pattern.replace("KEY", key)) for key in self.source_keys]


def ticket_list(page_number: str | None) -> Page:
    tickets = Ticket.objects.select_related("repository").annotate(
        total=Count("tasks"), succeeded=Count("tasks", filter=Q(tasks__status="succeeded"))).order_by("-id")
    return Paginator(tickets, TICKETS_PER_PAGE).get_page(page_number)


def ticket_page(ticket_id: int) -> dict[str, Any]:
    """Everything the ticket page shows: a handful of queries whatever the number of tasks."""
    seq = latest_seq(ticket_id)
    tasks = _tasks(ticket_id)
    return {
        **_header(ticket_id),
        "seq": seq,
        "dag_svg": _dag_svg(ticket_id, tasks),
        "tasks": tasks,
        "join_cards": _join_cards(ticket_id),
        "chain_attempts": _chain_attempts(ticket_id),
        "merge_chart": merge_pages.ticket_chart(ticket_id),
        "task_statuses": states.TASK.states,
    }


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


def _tasks(ticket_id: int, ids: set[int] | None = None) -> list[Task]:
    """Task rows, each with its ``href``: reverse() once, not once per row (a third of a 1,000-task page's
    rendering time went to ``{% url %}``)."""
    tasks = Task.objects.filter(ticket_id=ticket_id).defer(*HEAVY_TASK_FIELDS)
    rows = list(tasks if ids is None else tasks.filter(pk__in=ids))
    pattern = task_url(ticket_id, "KEY")
    for task in rows:
        # Not a field: the row's link, which the template reads when it is there.
        task.href = pattern.replace("KEY", task.key)  # type: ignore[attr-defined]
    return rows


def _header(ticket_id: int) -> dict[str, Any]:
    """The ticket header: raises Http404 for an unknown ticket, so it is read first."""
    ticket = get_object_or_404(Ticket.objects.select_related("repository"), pk=ticket_id)
    publish = Event.objects.filter(ticket_id=ticket_id, kind__in=PUBLISH_EVENTS).last()
    failed = publish if publish is not None and publish.kind == "publish.failed" else None
    return {
        "ticket": ticket,
        "progress": _progress(ticket_id),
        "publish_error": failed.payload.get("error", "") if failed else "",
    }


def _progress(ticket_id: int) -> Progress:
    counts = dict(Task.objects.filter(ticket_id=ticket_id).order_by().values_list("status")
                  .annotate(n=Count("id")).values_list("status", "n"))
    return Progress(sum(counts.values()), counts)


def _dag_svg(ticket_id: int, tasks: list[Task] | None = None) -> str:
    if tasks is None:
        tasks = list(Task.objects.filter(ticket_id=ticket_id).only("id", "key", "title", "status"))
    edges = Task.depends_on.through.objects.filter(from_task__ticket_id=ticket_id).values_list(
        "to_task_id", "from_task_id")
    joins = Join.objects.filter(ticket_id=ticket_id).values_list("id", "continuation_id", "status")
    # reverse() once, not once per node: this is the hot loop of a 1,000-task page.
    pattern = task_url(ticket_id, "KEY")
    return dagsvg.render(
        [dagsvg.Node(t.pk, t.key, t.title, t.status) for t in tasks],
        list(edges),
        [dagsvg.JoinMark(*row) for row in joins],
        href=lambda node: pattern.replace("KEY", node.key),
    )


def _attempts(ticket_id: int) -> Any:
    return MergeAttempt.objects.filter(ticket_id=ticket_id).annotate(
        hunks=Sum("conflict_files__hunk_count"), task_key=F("task__key"))


def _join_cards(ticket_id: int, join_ids: set[int] | None = None) -> list[JoinCard]:
    joins = Join.objects.filter(ticket_id=ticket_id).annotate(continuation_key=F("continuation__key"))
    sources = Join.sources.through.objects.filter(join__ticket_id=ticket_id).order_by("task__key")
    attempts = _attempts(ticket_id).filter(join__isnull=False)
    if join_ids is not None:
        joins = joins.filter(pk__in=join_ids)
        sources = sources.filter(join_id__in=join_ids)
        attempts = attempts.filter(join_id__in=join_ids)
    keys: dict[int, list[str]] = {}
    for join_id, key in sources.values_list("join_id", "task__key"):
        keys.setdefault(join_id, []).append(key)
    by_join: dict[int, list[MergeAttempt]] = {}
    for attempt in attempts:
        by_join.setdefault(attempt.join_id, []).append(attempt)
    pattern = task_url(ticket_id, "KEY")
    return [JoinCard(j, j.continuation_key, keys.get(j.pk, []), by_join.get(j.pk, []), pattern) for j in joins]


def _chain_attempts(ticket_id: int) -> list[MergeAttempt]:
    """Merges of a single task branch (no join); a join's attempts are shown on its card."""
    return list(_attempts(ticket_id).filter(join__isnull=True))


def _task_detail(task: Task) -> dict[str, Any]:
    def pretty(value: Any) -> str:
        return "" if value is None else json.dumps(value, indent=2, sort_keys=True, default=str)
    return {
        "parents": sorted(task.depends_on.values_list("key", flat=True)),
        "claims": list(task.claims.all()),
        "result_json": pretty(task.result),
        "synthesis_json": pretty(task.synthesis_context),
    }


@dataclass
class LiveView:
    """What one websocket shows: the ticket page, or the page of one of its tasks (``task_id``).

    Turns a batch of event ids into out-of-band fragments for exactly what those events changed, and
    remembers what the browser has (rows it has, log length) to choose between a row and the table.
    """

    ticket_id: int
    staff: bool = False
    task_id: int | None = None
    can_operate: bool = False  # the viewer may retry tasks and cancel the ticket: fragments show the buttons
    seq: int = 0
    known_tasks: set[int] = field(default_factory=set)
    log_len: int = 0

    def connect(self, since: int | None) -> str:
        """The first message: only the sequence number when nothing happened since ``since``, else a
        snapshot of every fragment of the page."""
        self.seq = latest_seq(self.ticket_id)
        quiet = since == self.seq and not Event.objects.filter(
            ticket_id=self.ticket_id, created_at__gte=timezone.now() - RECENT).exists()
        if quiet:
            self.known_tasks = set(Task.objects.filter(ticket_id=self.ticket_id).values_list("pk", flat=True))
            if self.task_id is not None:
                self.log_len = Task.objects.filter(pk=self.task_id).values_list(Length("log"), flat=True)[0]
            return self._render(set())
        if self.task_id is not None:
            return self._render({("header",), ("detail",), ("log-snapshot",), ("nav",)})
        return self._render({("header",), ("dag",), ("table",), ("joins",), ("merges",), ("chart",), ("nav",)})

    def poll(self, since: int | None) -> str:
        """What a page whose socket is down fetches every few seconds: the fragments that events after
        ``since`` changed (and events of the last ``RECENT`` seconds, which may have committed below it:
        rendering a fragment twice is harmless), or only the sequence number when nothing happened."""
        if since is None:
            return self.connect(None)
        self.seq = since
        self.known_tasks = set(Task.objects.filter(ticket_id=self.ticket_id).values_list("pk", flat=True))
        recent = timezone.now() - RECENT
        events = list(Event.objects.filter(Q(pk__gt=since) | Q(created_at__gte=recent), ticket_id=self.ticket_id)
                      .values_list("pk", "kind", "payload"))
        if not events:
            return self._render(set())
        self.seq = max(since, *(pk for pk, _, _ in events))
        pairs = [(kind, payload) for _, kind, payload in events]
        affected = self._affected_on_task_page(pairs) if self.task_id else self._affected(pairs)
        if ("log",) in affected:  # the page's log length is unknown here: send the whole log
            affected = (affected - {("log",)}) | {("log-snapshot",)}
        return self._render(affected)

    def update(self, event_ids: set[int]) -> str:
        """Fragments for what the events changed; an empty string when none is on this page."""
        events = list(Event.objects.filter(pk__in=event_ids, ticket_id=self.ticket_id).values_list(
            "kind", "payload"))
        self.seq = max(self.seq, *event_ids)
        affected = self._affected_on_task_page(events) if self.task_id else self._affected(events)
        return self._render(affected) if affected else ""

    def _affected(self, events: list[tuple[str, dict]]) -> set[tuple]:
        keys: set[tuple] = set()
        for kind, payload in events:
            family = kind.partition(".")[0]
            if kind == "task.log":
                continue
            if family == "task":
                keys.add(("header",))
                task_id = payload.get("task_id")
                if kind == "task.created" or task_id not in self.known_tasks:
                    keys |= {("table",), ("dag",)}
                else:
                    keys |= {("row", task_id), ("node", task_id)}
            elif family == "join":
                keys.add(("nav",))
                join_id = payload.get("join_id")
                if kind == "join.registered" or not join_id:
                    keys |= {("joins",), ("dag",)}
                else:
                    keys |= {("join", join_id), ("diamond", join_id)}
            elif family == "merge":
                keys |= {("header",), ("chart",), ("nav",)}
                join_id = payload.get("join_id")
                if join_id is None and payload.get("attempt_id"):
                    join_id = MergeAttempt.objects.filter(pk=payload["attempt_id"]).values_list(
                        "join_id", flat=True).first()
                keys.add(("join", join_id) if join_id else ("merges",))
            else:
                keys |= {("header",), ("nav",)} if family == "ticket" else {("header",)}
        # A whole section replaces its parts.
        for whole, part in (("table", "row"), ("joins", "join"), ("dag", "node"), ("dag", "diamond")):
            if (whole,) in keys:
                keys = {k for k in keys if k[0] != part}
        return keys

    def _affected_on_task_page(self, events: list[tuple[str, dict]]) -> set[tuple]:
        keys: set[tuple] = set()
        for kind, payload in events:
            mine = payload.get("task_id") == self.task_id
            if kind == "task.log":
                keys |= {("log",)} if mine else set()
            elif mine:
                keys |= {("header",), ("detail",)}
            elif kind.partition(".")[0] in ("task", "ticket", "merge"):
                keys.add(("header",))
            if kind.partition(".")[0] in ("join", "ticket", "merge"):
                keys.add(("nav",))
        return keys

    def _render(self, keys: set[tuple]) -> str:
        """One message: a fragment per key, batched per kind (a query per kind, not per row)."""
        ids: dict[str, set[int]] = defaultdict(set)
        for kind, *ref in keys:
            ids[kind].update(ref)
        parts: list[str] = []
        if "header" in ids:
            parts.append(self._partial("ticket_header", **_header(self.ticket_id)))
        if "dag" in ids:
            parts.append(self._partial("dag", dag_svg=_dag_svg(self.ticket_id)))
        if ids["node"]:
            for row in Task.objects.filter(pk__in=ids["node"]).values_list("id", "key", "title", "status"):
                node = dagsvg.Node(*row)
                mark = dagsvg.node_mark(node, task_url(self.ticket_id, node.key))
                parts.append(self._partial("dag_mark", target=f"dag-node-{node.id}", mark=mark))
        if ids["diamond"]:
            for join_id, continuation_id, status, key in Join.objects.filter(pk__in=ids["diamond"]).values_list(
                    "id", "continuation_id", "status", "continuation__key"):
                mark = dagsvg.join_mark(dagsvg.JoinMark(join_id, continuation_id, status), key)
                parts.append(self._partial("dag_mark", target=f"dag-join-{join_id}", mark=mark))
        if "table" in ids:
            tasks = _tasks(self.ticket_id)
            self.known_tasks = {t.pk for t in tasks}
            parts.append(self._partial("task_table", tasks=tasks))
        if ids["row"]:
            parts.extend(self._partial("task_row", task=t) for t in _tasks(self.ticket_id, ids["row"]))
        if "joins" in ids:
            parts.append(self._partial("joins", join_cards=_join_cards(self.ticket_id)))
        if ids["join"]:
            parts.extend(self._partial("join_card", card=c) for c in _join_cards(self.ticket_id, ids["join"]))
        if "merges" in ids:
            parts.append(self._partial("merge_attempts", chain_attempts=_chain_attempts(self.ticket_id)))
        if "chart" in ids:
            parts.append(self._partial("merge_chart", merge_chart=merge_pages.ticket_chart(self.ticket_id)))
        if "nav" in ids:
            parts.append(self._partial("nav_reviews", reviews_waiting=merge_pages.reviews_waiting()))
        if "detail" in ids:
            assert self.task_id is not None  # only a task's page asks for its detail
            task = Task.objects.get(pk=self.task_id)
            parts.append(self._partial("task_summary", task=task, **_task_detail(task)))
        if "log" in ids or "log-snapshot" in ids:
            parts.append(self._log(snapshot="log-snapshot" in ids))
        parts.append(self._partial("ticket_seq", seq=self.seq))
        return "".join(parts)

    def _log(self, snapshot: bool) -> str:
        """The new end of the log, appended in the browser; the whole log when it was reset or asked for."""
        assert self.task_id is not None  # only a task's page shows a log
        offset = 0 if snapshot else self.log_len
        length, tail = Task.objects.filter(pk=self.task_id).values_list(
            Length("log"), Substr("log", offset + 1)).get()
        if length < offset:  # a retry started a new log
            return self._log(snapshot=True)
        self.log_len = length
        return self._partial("task_log", task_id=self.task_id, log=tail or "", append=not snapshot)

    def _partial(self, name: str, **context: Any) -> str:
        return render_to_string(f"{PARTIALS}{name}.html", {"oob": True, "staff": self.staff,
                                                           "can_operate": self.can_operate, **context})
