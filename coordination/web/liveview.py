"""The fragments the live pages receive: out-of-band HTML for exactly what a batch of events changed.

``LiveView`` serves the pages of one ticket (the ticket page, a task's page), each getting only fragments
it has a place for: a fragment without its target on the page is an error in the browser (the review page
has a view of its own, ``review.live``). ``DashboardView`` serves the pages about every ticket (the ticket
list, the Reviews inbox) and the navigation's count on every other page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.db.models.functions import Length, Substr
from django.template.loader import render_to_string
from django.utils import timezone

from coordination.models import Event, Join, Task
from coordination.web import dagsvg, dashboard, merge_pages, rows
from coordination.web.dashboard import PARTIALS, RECENT
from merges.models import MergeAttempt

# Event families that can change what waits for a person (the navigation's count, the inbox).
NEEDS_YOU_FAMILIES = ("join", "merge", "ticket", "review")
# Task moves that change the timeline (a run starts, ends, or is undone); ready, claimed and waiting do not.
QUIET_FOR_TIMELINE = ("task.ready", "task.claimed", "task.waiting")
TICKET_PAGE = ("header", "dag", "timeline", "table", "joins", "merges", "chart", "nav")


def needs_you_changed(kind: str) -> bool:
    return kind.partition(".")[0] in NEEDS_YOU_FAMILIES


def nav_fragment() -> str:
    """The navigation's count of merges waiting for a person, out of band: every page has it."""
    return render_to_string(f"{PARTIALS}nav_reviews.html",
                            {"oob": True, "reviews_waiting": merge_pages.reviews_waiting()})


@dataclass
class LiveView:
    """What one websocket of a ticket shows: the ticket page, or a task's page (``task_id``). Remembers
    what the browser has (rows it has, log length) to choose between a row and the table."""

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
        self.seq = dashboard.latest_seq(self.ticket_id)
        quiet = since == self.seq and not Event.objects.filter(
            ticket_id=self.ticket_id, created_at__gte=timezone.now() - RECENT).exists()
        if quiet:
            self.known_tasks = set(Task.objects.filter(ticket_id=self.ticket_id).values_list("pk", flat=True))
            if self.task_id is not None:
                self.log_len = Task.objects.filter(pk=self.task_id).values_list(Length("log"), flat=True)[0]
            return self._render(set())
        if self.task_id is not None:
            return self._render({("header",), ("detail",), ("log-snapshot",), ("nav",)})
        return self._render({(name,) for name in TICKET_PAGE})

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
        affected = self._affected([(kind, payload) for _, kind, payload in events])
        if ("log",) in affected:  # the page's log length is unknown here: send the whole log
            affected = (affected - {("log",)}) | {("log-snapshot",)}
        return self._render(affected)

    def update(self, event_ids: set[int]) -> str:
        """Fragments for what the events changed; an empty string when none is on this page."""
        events = list(Event.objects.filter(pk__in=event_ids, ticket_id=self.ticket_id).values_list(
            "kind", "payload"))
        self.seq = max(self.seq, *event_ids)
        affected = self._affected(events)
        return self._render(affected) if affected else ""

    def _affected(self, events: list[tuple[str, dict]]) -> set[tuple]:
        if self.task_id is not None:
            return self._affected_on_task_page(events)
        keys: set[tuple] = set()
        for kind, payload in events:
            family = kind.partition(".")[0]
            if kind == "task.log":
                continue
            if needs_you_changed(kind):
                keys.add(("nav",))
            if family == "task":
                keys.add(("header",))
                task_id = payload.get("task_id")
                if kind not in QUIET_FOR_TIMELINE:
                    keys.add(("timeline",))
                if kind == "task.created" or task_id not in self.known_tasks:
                    keys |= {("table",), ("dag",)}
                elif payload.get("from") == "succeeded":  # dropped from a merge: its re-run is a node of its own
                    keys |= {("row", task_id), ("dag",), ("joins",)}
                else:
                    keys |= {("row", task_id), ("node", task_id)}
            elif family == "join":
                join_id = payload.get("join_id")
                if kind == "join.registered" or not join_id:
                    keys |= {("joins",), ("dag",)}
                else:
                    keys |= {("join", join_id), ("diamond", join_id)}
            elif family == "merge":
                keys |= {("header",), ("chart",), ("timeline",)}
                join_id = payload.get("join_id")
                if join_id is None and payload.get("attempt_id"):
                    join_id = MergeAttempt.objects.filter(pk=payload["attempt_id"]).values_list(
                        "join_id", flat=True).first()
                keys.add(("join", join_id) if join_id else ("merges",))
            elif kind == "review.decided":
                pass  # a hunk decided: nothing on the ticket's page but the navigation's inbox count moves
            elif family == "review":
                keys |= {("header",), ("joins",), ("dag",)}
            else:
                keys.add(("header",))
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
            if needs_you_changed(kind):
                keys.add(("nav",))
        return keys

    def _render(self, keys: set[tuple]) -> str:
        """One message: a fragment per key, batched per kind (a query per kind, not per row)."""
        ids: dict[str, set[int]] = defaultdict(set)
        for kind, *ref in keys:
            ids[kind].update(ref)
        links = rows.Links.for_ticket(self.ticket_id, self.staff)
        dropped = dashboard.dropped_sources(self.ticket_id) if ids.keys() & {"node", "row", "table", "dag",
                                                                              "timeline", "joins", "join"} else {}
        parts: list[str] = []
        if "header" in ids:
            parts.append(self._partial("ticket_header", **dashboard._header(self.ticket_id)))
        if "dag" in ids:
            parts.append(self._partial("dag", dag_svg=dashboard.dag_svg(self.ticket_id, dropped=dropped)))
        if ids["node"]:
            for pk, key, title, status in Task.objects.filter(pk__in=ids["node"]).values_list(
                    "id", "key", "title", "status"):
                mark = dagsvg.node_mark(dagsvg.Node(pk, key, title, status, rerun=pk in dropped), links.task(key))
                parts.append(self._partial("dag_mark", target=f"dag-node-{pk}", mark=mark))
        if ids["diamond"]:
            for join_id, continuation_id, status, key in Join.objects.filter(pk__in=ids["diamond"]).values_list(
                    "id", "continuation_id", "status", "continuation__key"):
                mark = dagsvg.join_mark(dagsvg.JoinMark(join_id, continuation_id, status), key)
                parts.append(self._partial("dag_mark", target=f"dag-join-{join_id}", mark=mark))
        # The table and the timeline share one read of the task rows.
        tasks = dashboard.task_rows(self.ticket_id, links, dropped) if ids.keys() & {"table", "timeline"} else []
        if "table" in ids:
            self.known_tasks = {t.pk for t in tasks}
            parts.append(self._partial("task_table", task_rows=rows.task_rows(tasks), task_count=len(tasks)))
        if ids["row"]:
            parts.extend(rows.task_row(t, oob=True) for t in dashboard.task_rows(self.ticket_id, links, dropped,
                                                                                  ids["row"]))
        parts.extend(self._joins_and_timeline(ids, links, dropped, tasks))
        if "chart" in ids:
            parts.append(self._partial("merge_chart", merge_chart=merge_pages.ticket_chart(self.ticket_id)))
        if "nav" in ids:
            parts.append(nav_fragment())
        if "detail" in ids:
            assert self.task_id is not None  # only a task's page asks for its detail
            task = Task.objects.get(pk=self.task_id)
            parts.append(self._partial("task_summary", task=task, **dashboard._task_detail(task)))
        if "log" in ids or "log-snapshot" in ids:
            parts.append(self._log(snapshot="log-snapshot" in ids))
        parts.append(self._partial("ticket_seq", seq=self.seq))
        return "".join(parts)

    def _joins_and_timeline(self, ids: dict[str, set[int]], links: rows.Links, dropped: dict,
                            tasks: list[rows.TaskRow]) -> list[str]:
        """The join table (whole, or some rows and the summary), the task merges, the timeline: they share
        one read of the ticket's merges."""
        if not (ids.keys() & {"joins", "merges", "timeline"} or ids["join"]):
            return []
        attempts = dashboard.attempt_cells(self.ticket_id)
        joins = dashboard.join_rows(self.ticket_id, links, attempts, dropped)
        parts = []
        if "joins" in ids or ids["join"]:
            summary = dashboard.joins_summary(joins)
            parts.append(self._partial("joins_summary", joins_summary=summary))
        if "joins" in ids:
            parts.append(self._partial("joins", join_rows=rows.join_rows(joins, links)))
        elif ids["join"]:
            parts.extend(rows.join_row(j, links, oob=True) for j in joins if j.pk in ids["join"])
        if "merges" in ids:
            chain = rows.chain_rows([a for a in attempts if a.join_id is None], links)
            parts.append(self._partial("merge_attempts", chain_rows=chain))
        if "timeline" in ids:
            parts.append(self._partial("timeline", timeline_svg=dashboard.timeline_svg(tasks, attempts, joins,
                                                                                       links)))
        return parts

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


@dataclass
class DashboardView:
    """The pages about every ticket: ``tickets`` (the list, one page of it), ``reviews`` (the inbox), or
    ``nav`` (any other page: the navigation's count only). No sequence numbers: each message carries
    whole fragments, so a reconnecting page only needs the snapshot."""

    view: str = "nav"
    page: str | None = None

    def snapshot(self) -> str:
        return self._render(needs_you=True, tickets=True)

    def update(self, kinds: set[str]) -> str:
        needs_you = any(needs_you_changed(kind) for kind in kinds)
        return self._render(needs_you=needs_you, tickets=bool(kinds))

    def _render(self, needs_you: bool, tickets: bool) -> str:
        parts = [nav_fragment()] if needs_you else []
        if self.view == "tickets" and tickets:
            parts.append(render_to_string(f"{PARTIALS}ticket_table.html",
                                          {"oob": True, "page": dashboard.ticket_list(self.page)}))
        if self.view == "reviews" and needs_you:
            parts.append(render_to_string(f"{PARTIALS}inbox.html", {"oob": True, "rows": merge_pages.inbox()}))
        return "".join(parts)
