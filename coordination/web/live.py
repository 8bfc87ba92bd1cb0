"""Getting events from the table to the browsers watching a ticket, and to the pages about all tickets.

With Redis the channel layer crosses processes, so a committed event is announced at once. The
in-process layer does not cross processes (workers write events, daphne serves sockets), so there a
relay inside the ASGI process tails the event table instead (see ``EventRelay``).

Each event goes to its ticket's group, and (but a log line, which no list shows) to the dashboard
group: the ticket list, the Reviews inbox and every page's navigation count listen there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
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
    # robust: a page that misses an announcement catches up on reconnect or by polling, but a channel
    # layer that is down (Redis restarting) must not stop the callbacks after it (the jobs the same commit
    # handed over) nor fail a caller whose work is already committed.
    transaction.on_commit(lambda: async_to_sync(send_event)(get_channel_layer(), event.pk, event.ticket_id,
                                                            event.kind), robust=True)


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
