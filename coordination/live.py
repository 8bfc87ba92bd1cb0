"""Getting events from the table to the browsers watching a ticket.

With Redis the channel layer crosses processes, so a committed event is announced at once. The
in-process layer does not cross processes (workers write events, daphne serves sockets), so there a
relay inside the ASGI process tails the event table instead (see ``EventRelay``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

if TYPE_CHECKING:
    from coordination.models import Event


def ticket_group(ticket_id: int) -> str:
    return f"ticket-{ticket_id}"


def announce_on_commit(event: Event) -> None:
    if not settings.REDIS_URL:
        return  # the relay in the ASGI process finds it in the table
    message = {"type": "ticket.event", "event_id": event.pk}
    transaction.on_commit(lambda: async_to_sync(get_channel_layer().group_send)(
        ticket_group(event.ticket_id), message))
