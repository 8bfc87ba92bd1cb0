"""The review page, live: what its socket (or its polling, while the socket is down) sends.

The page is not the ticket page: it has no graph, no task table, no charts, so it gets fragments of its
own -- the ticket header, the navigation count, the rows of the tasks this merge joins, and, when an event
concerns this merge (an action requested, a retry answered, the merge done), its title, rounds and summary.
That is how a queued approve shows "approving…" and then the record of the round, with no reload. Another
reviewer's decision (``review.decided``) sends only the file it changed, the summary and the history: the rest
of the page, and whatever this reviewer is typing elsewhere, stays as it is.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from coordination.models import Event, Task
from coordination.review import page
from coordination.web import dashboard, merge_pages
from coordination.web.consumers import PageView, TicketConsumer
from coordination.web.permissions import can_operate, can_review
from merges.models import MergeAttempt

PARTIALS = "coordination/partials/"
WHOLE = frozenset({("header",), ("nav",), ("rows",), ("review",)})


class ReviewLiveView:
    """Turns a batch of the ticket's events into the review page's out-of-band fragments."""

    def __init__(self, ticket_id: int, attempt_id: int, *, can_review: bool, can_operate: bool, staff: bool):
        self.ticket_id, self.attempt_id = ticket_id, attempt_id
        self.can_review, self.can_operate, self.staff = can_review, can_operate, staff
        attempt = MergeAttempt.objects.select_related("join").get(pk=attempt_id)
        self.watched = set(page.watched_tasks(attempt))
        self.seq = 0

    def connect(self, since: int | None) -> str:
        """A snapshot, or, for a page that saw events up to ``since``, what changed after it."""
        if since is None:
            self.seq = dashboard.latest_seq(self.ticket_id)
            return self._render(set(WHOLE))
        return self.poll(since)

    def poll(self, since: int | None) -> str:
        """What events after ``since`` changed, and what those of the last few seconds did (they may have
        committed below it: rendering a fragment twice is harmless). The review itself is re-rendered only
        for an event after ``since``: doing it for nothing would swap the page under a reviewer's click."""
        if since is None:
            return self.connect(None)
        recent = timezone.now() - dashboard.RECENT
        events = list(Event.objects.filter(Q(pk__gt=since) | Q(created_at__gte=recent), ticket_id=self.ticket_id)
                      .values_list("pk", "kind", "payload"))
        self.seq = max([since, *(pk for pk, _, _ in events)])
        keys = {key for key in self._affected([(kind, payload) for pk, kind, payload in events if pk <= since])
                if key[0] not in ("review", "file")}
        return self._render(keys | self._affected([(kind, payload) for pk, kind, payload in events if pk > since]))

    def update(self, event_ids: set[int]) -> str:
        events = list(Event.objects.filter(pk__in=event_ids, ticket_id=self.ticket_id).values_list("kind", "payload"))
        self.seq = max(self.seq, *event_ids)
        affected = self._affected(events)
        return self._render(affected) if affected else ""

    def _affected(self, events: list[tuple[str, dict]]) -> set[tuple]:
        keys: set[tuple] = set()
        for kind, payload in events:
            family = kind.partition(".")[0]
            if kind == "task.log":
                continue
            if kind == "review.decided":  # changes nothing of the ticket's but what waits, and this review
                keys.add(("nav",))
                if payload.get("attempt_id") == self.attempt_id:
                    keys.add(("file", payload.get("file_id")))
                continue
            keys.add(("header",))
            if family == "task" and payload.get("task_id") in self.watched:
                keys.add(("row", payload["task_id"]))
            if family in ("join", "merge", "ticket", "review"):
                keys.add(("nav",))
            if family in ("merge", "review") and payload.get("attempt_id") == self.attempt_id:
                keys.add(("review",))
        return keys

    def _render(self, keys: set[tuple]) -> str:
        parts: list[str] = []
        if ("header",) in keys:
            # attempt: the header's "needs you" banner leaves out the review this page is
            parts.append(self._partial("ticket_header", **dashboard._header(self.ticket_id),
                                       attempt={"pk": self.attempt_id}))
        if ("nav",) in keys:
            parts.append(self._partial("nav_reviews", reviews_waiting=merge_pages.reviews_waiting()))
        rows = self.watched if ("rows",) in keys else {ref for kind, *ref in keys if kind == "row" for ref in ref}
        if rows:
            tasks = Task.objects.filter(pk__in=rows).defer(*dashboard.HEAVY_TASK_FIELDS)
            parts.extend(self._partial("task_row", task=task) for task in tasks)
        if ("review",) in keys:
            parts.append(page.render_review(None, self.attempt_id, self.can_review, oob=True))
        elif files := {ref for kind, *ref in keys if kind == "file" for ref in ref}:
            parts.append(page.render_decisions(self.attempt_id, files, self.can_review))
        parts.append(self._partial("ticket_seq", seq=self.seq))
        return "".join(parts)

    def _partial(self, name: str, **context: Any) -> str:
        return render_to_string(f"{PARTIALS}{name}.html", {"oob": True, "staff": self.staff,
                                                           "can_operate": self.can_operate, **context})


def review_live_view(ticket_id: int, attempt_id: int, user) -> ReviewLiveView:
    return ReviewLiveView(ticket_id, attempt_id, can_review=can_review(user), can_operate=can_operate(user),
                          staff=user.is_staff)


class ReviewConsumer(TicketConsumer):
    """``ws/tickets/<id>/reviews/<attempt id>/[?since=<event id>]``: the ticket's events, as the review
    page of one of its merges shows them."""

    def make_view(self, user, ticket_id: int, query: dict[str, list[str]]) -> PageView | None:
        attempt_id = self.scope["url_route"]["kwargs"]["attempt_id"]
        if not MergeAttempt.objects.filter(pk=attempt_id, ticket_id=ticket_id).exists():
            return None
        return review_live_view(ticket_id, attempt_id, user)
