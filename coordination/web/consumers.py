"""The live view's websocket: joins a ticket's group and forwards its events as htmx out-of-band HTML."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from coordination.models import Task, Ticket
from coordination.web.dashboard import LiveView
from coordination.web.live import relay, ticket_group
from coordination.web.permissions import can_operate, can_view

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.02  # a burst of events (a join merging, a log streaming) becomes one message;
# the relay hands a poll's events over at once, so a short window catches a burst and costs little latency
SERVICE_RESTART = 1012  # htmx-ws reconnects on 1006, 1011, 1012 and 1013


class PageView(Protocol):
    """What a live page is to its socket: a snapshot on connect, then the fragments events change."""

    ticket_id: int

    def connect(self, since: int | None) -> str: ...

    def update(self, event_ids: set[int]) -> str: ...


class TicketConsumer(AsyncWebsocketConsumer):
    """``ws/tickets/<id>/[?since=<event id>][&task=<task id>]``: the ticket page, or one task's page.

    The first message is a snapshot (or, when nothing happened since ``since``, just the sequence
    number); after that each message carries the fragments a burst of events changed and the id of
    the newest event it reflects, which the page sends back as ``since`` when it reconnects.
    """

    view: PageView | None = None
    flushing: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            # The server cancels every consumer when it shuts down: say so, and the browser comes back.
            if self.view is not None:
                try:
                    await self.base_send({"type": "websocket.close", "code": SERVICE_RESTART})
                except Exception:
                    # daphne (autobahn) sends only 1000 or 3000-4999 and raises for 1012; its dropped
                    # connection reaches the browser as 1006, which htmx-ws retries all the same.
                    pass
            raise

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        if not await database_sync_to_async(can_view)(user):  # signed in, but in neither viewers nor reviewers
            await self.close()
            return
        ticket_id = self.scope["url_route"]["kwargs"]["ticket_id"]
        query = parse_qs(self.scope.get("query_string", b"").decode())
        view = await database_sync_to_async(self.make_view)(user, ticket_id, query)
        if view is None:
            await self.close()
            return
        self.pending: set[int] = set()
        await self.channel_layer.group_add(ticket_group(ticket_id), self.channel_name)
        await relay.ensure_running()  # before the snapshot, so nothing falls between the two
        await self.accept()
        await self.send(text_data=await database_sync_to_async(view.connect)(_int(query, "since")))
        self.view = view

    def make_view(self, user, ticket_id: int, query: dict[str, list[str]]) -> PageView | None:
        """What this socket shows (the ticket page, or one task's), or None for a page that is not there.
        Another page of the ticket (the review page) subclasses this consumer and shows itself here."""
        task_id = _int(query, "task")
        if not _exists(ticket_id, task_id):
            return None
        return LiveView(ticket_id, staff=user.is_staff, task_id=task_id, can_operate=can_operate(user))

    async def disconnect(self, code: int) -> None:
        if self.flushing is not None:
            self.flushing.cancel()
        if self.view is not None:
            await self.channel_layer.group_discard(ticket_group(self.view.ticket_id), self.channel_name)

    async def ticket_event(self, message: dict) -> None:
        if self.view is None:
            return
        self.pending.add(message["event_id"])
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush(self.view))

    async def _flush(self, view: PageView) -> None:
        """Render pending events, one batch at a time, so messages leave in the order of their state."""
        try:
            while self.pending:
                await asyncio.sleep(COALESCE_SECONDS)
                batch, self.pending = self.pending, set()
                try:
                    html = await database_sync_to_async(view.update)(batch)
                except Exception:
                    log.exception("live view: rendering events %s of ticket %s failed", sorted(batch),
                                  view.ticket_id)
                    continue
                if html:
                    await self.send(text_data=html)
        finally:
            self.flushing = None


def _int(query: dict[str, list[str]], name: str) -> int | None:
    value = query.get(name, [""])[-1]
    return int(value) if value.isdigit() else None


def _exists(ticket_id: int, task_id: int | None) -> bool:
    if task_id is not None:
        return Task.objects.filter(pk=task_id, ticket_id=ticket_id).exists()
    return Ticket.objects.filter(pk=ticket_id).exists()
