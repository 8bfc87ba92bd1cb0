"""Getting events from the table to the browsers watching a ticket, and to the pages about all tickets.

With Redis the channel layer crosses processes, so a committed event is announced at once. The
in-process layer does not cross processes (workers write events, daphne serves sockets), so there a
relay inside the ASGI process tails the event table instead (see ``EventRelay``).

Each event goes to its ticket's group, and (but a log line, which no list shows) to the dashboard
group: the ticket list, the Reviews inbox and every page's navigation count listen there.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from typing import TYPE_CHECKING

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q

if TYPE_CHECKING:
    from coordination.models import Event

log = logging.getLogger(__name__)


DASHBOARD_GROUP = "dashboard"
UNLISTED = ("task.log",)  # events no page about all tickets shows


def ticket_group(ticket_id: int) -> str:
    return f"ticket-{ticket_id}"


async def send_event(layer, event_id: int, ticket_id: int, kind: str) -> None:
    await layer.group_send(ticket_group(ticket_id), {"type": "ticket.event", "event_id": event_id})
    if kind not in UNLISTED:
        await layer.group_send(DASHBOARD_GROUP, {"type": "dashboard.event", "event_id": event_id,
                                                 "ticket_id": ticket_id, "kind": kind})


def announce_saved_event(sender: type, instance: Event, created: bool, **kwargs: object) -> None:
    """post_save receiver (connected in ``CoordinationConfig.ready``): a new event is announced."""
    if created:
        announce_on_commit(instance)


def announce_on_commit(event: Event) -> None:
    if not settings.REDIS_URL:
        return  # the relay in the ASGI process finds it in the table
    # Handed to this process's announcer after the commit, not sent from the committing thread: a send
    # made there (a new event loop and Redis connection each time, about 10 ms) held back the callbacks
    # after it, the jobs the same commit handed over (the next task's run waited for its task.ready).
    transaction.on_commit(lambda: ANNOUNCER.put(event.pk, event.ticket_id, event.kind), robust=True)


class Announcer:
    """Sends a process's announcements in order from one thread, on one event loop (so the channel layer
    keeps its Redis connection). Robust: a page that misses an announcement catches up on reconnect or by
    polling, so a channel layer that is down (Redis restarting) costs a warning, and nothing waits for it.
    A forked worker process starts its own thread; at exit what is queued is sent, for a second at most."""

    FLUSH_AT_EXIT_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._queue: queue.SimpleQueue[tuple[int, int, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def put(self, event_id: int, ticket_id: int, kind: str) -> None:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._queue = os.getpid(), queue.SimpleQueue()
                self._thread = threading.Thread(target=self._run, args=(self._queue,), daemon=True,
                                                name="dagmerge-announcer")
                self._thread.start()
            self._queue.put((event_id, ticket_id, kind))

    def flush(self, timeout: float = FLUSH_AT_EXIT_S) -> None:
        """Send what is queued (atexit): a short-lived process (``dagmerge submit``) announces its events."""
        if self._thread is not None and self._pid == os.getpid():
            with self._lock:
                self._queue.put(None)
                self._pid = 0  # the next announcement starts a thread again
            self._thread.join(timeout)

    @staticmethod
    def _run(pending: queue.SimpleQueue[tuple[int, int, str] | None]) -> None:
        loop = asyncio.new_event_loop()
        while (item := pending.get()) is not None:
            try:
                loop.run_until_complete(send_event(get_channel_layer(), *item))
            except Exception as exc:  # noqa: BLE001 - see the class: never fatal
                log.warning("event %s not announced: %s", item[0], exc)
        loop.close()


ANNOUNCER = Announcer()
atexit.register(ANNOUNCER.flush)


class EventRelay:
    """Tails the Event table and announces each new row to its ticket's group (in-process layer only).

    One asyncio task per ASGI process, started by the first websocket that connects. Ids can commit out
    of order (PostgreSQL sequences), so ids skipped over are looked for again for ``GAP_SECONDS``.
    """

    BATCH = 500
    GAP_SECONDS = 10.0
    MAX_GAPS = 1000

    def __init__(self) -> None:
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None

    async def ensure_running(self) -> None:
        """Start the relay unless it runs; returns once it knows where the table ends, so that every
        event committed after this call is relayed."""
        if settings.REDIS_URL:
            return
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._ready = loop.create_future()
            self._task = loop.create_task(self._run(self._ready), name="dagmerge-event-relay")
        assert self._ready is not None  # made with the task
        await asyncio.shield(self._ready)

    async def _run(self, ready: asyncio.Future) -> None:
        try:
            last = await database_sync_to_async(_newest_event_id)()
        except Exception as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(None)
        gaps: dict[int, float] = {}  # id → when to stop waiting for it
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(settings.DAGMERGE_RELAY_INTERVAL_MS / 1000)
            try:
                events = await database_sync_to_async(_events_after)(last, list(gaps), self.BATCH)
                now = time.monotonic()
                for event_id, ticket_id, kind in events:
                    gaps.pop(event_id, None)
                    if event_id > last:
                        missing = range(last + 1, event_id)
                        gaps.update((gap, now + self.GAP_SECONDS) for gap in missing[-self.MAX_GAPS:])
                        last = event_id
                    await send_event(layer, event_id, ticket_id, kind)
            except Exception:
                log.exception("event relay: relaying from the event table failed; trying again")
                continue
            for gap, deadline in list(gaps.items()):
                if deadline < now:
                    del gaps[gap]


def _newest_event_id() -> int:
    from coordination.models import Event

    return Event.objects.aggregate(newest=Max("id"))["newest"] or 0


def _events_after(last: int, gaps: list[int], limit: int) -> list[tuple[int, int, str]]:
    from coordination.models import Event

    return list(Event.objects.filter(Q(id__gt=last) | Q(id__in=gaps)).order_by("id")
                .values_list("id", "ticket_id", "kind")[:limit])


relay = EventRelay()
