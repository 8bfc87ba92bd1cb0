"""Driving one ticket to its end in this process (``dagmerge run``, tests): jobs on a thread pool."""

from __future__ import annotations

import time
from collections.abc import Callable

from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.models import Event, Ticket

STOPPING = ("done", "failed", "cancelled", "awaiting_review")


class Stuck(Exception):
    """Nothing is left to run, yet the ticket has not come to an end."""


def drive(ticket_id: int, pool: ThreadDispatcher, on_event: Callable[[Event], None] | None = None,
          timeout: float | None = None, poll: float = 0.2) -> str:
    """Wait until the ticket is done, failed, cancelled or awaiting review; return that status.

    Reports each new event to ``on_event`` as it goes. A status is returned only once the pool is idle,
    so everything its last jobs wrote is in the database and no queued job (an approve) is left to move it.
    """
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    while True:
        idle = pool.wait_idle(timeout=poll)  # measured first: after an idle pool, nothing changes
        for event in Event.objects.filter(ticket_id=ticket_id, pk__gt=seen).order_by("pk"):
            seen = event.pk
            if on_event:
                on_event(event)
        status = Ticket.objects.values_list("status", flat=True).get(pk=ticket_id)
        if status in STOPPING and idle:  # idle too: a queued approve may be about to move it on
            return status
        if idle:
            raise Stuck(f"nothing left to run, ticket {ticket_id} stays {status}")
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"ticket {ticket_id} still {status} after {timeout} s")
