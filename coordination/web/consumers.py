"""The live pages' websockets: they join groups and forward events as htmx out-of-band HTML.

``TicketConsumer`` serves the pages of one ticket (its group) and hears every ticket's needs-you changes
(the dashboard group) for the navigation's count; ``DashboardConsumer`` serves the ticket list, the
Reviews inbox and the navigation of every other page.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from coordination.models import Task, Ticket
from coordination.web.live import DASHBOARD_GROUP, relay, ticket_group
from coordination.web.liveview import DashboardView, LiveView, nav_fragment, needs_you_changed
from coordination.web.permissions import can_operate, can_view

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.02  # a burst of events (a join merging, a log streaming) becomes one message;
# the relay hands a poll's events over at once, so a short window catches a burst and costs little latency
DASHBOARD_COALESCE_SECONDS = 0.25  # the list and the inbox redraw whole tables: a few times a second at most
SERVICE_RESTART = 1012  # htmx-ws reconnects on 1006, 1011, 1012 and 1013


class PageView(Protocol):
    """What a live page is to its socket: a snapshot on connect, then the fragments events change."""

    ticket_id: int

    def connect(self, since: int | None) -> str: ...

    def update(self, event_ids: set[int]) -> str: ...


class ClosingOnShutdown(AsyncWebsocketConsumer):
    """Says 1012 (service restart) when the server cancels it at shutdown, so the browser comes back."""

    opened = False

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            if self.opened:
                try:
                    await self.base_send({"type": "websocket.close", "code": SERVICE_RESTART})
                except Exception:
                    # daphne (autobahn) sends only 1000 or 3000-4999 and raises for 1012; its dropped
                    # connection reaches the browser as 1006, which htmx-ws retries all the same.
                    pass
            raise

    async def may_view(self) -> bool:
        """Signed in and in viewers or reviewers (anonymous users and users in no group may not)."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return False
        return await database_sync_to_async(can_view)(user)


class TicketConsumer(ClosingOnShutdown):
    """``ws/tickets/<id>/[?since=<event id>][&task=<task id>]``: the ticket page, or one task's page.

    The first message is a snapshot (or, when nothing happened since ``since``, just the sequence
    number); after that each message carries the fragments a burst of events changed and the id of
    the newest event it reflects, which the page sends back as ``since`` when it reconnects. Another
    ticket's needs-you changes add the navigation's count to the next message.
    """

    view: PageView | None = None
    flushing: asyncio.Task | None = None

    async def connect(self) -> None:
        if not await self.may_view():
            await self.close()
            return
        user = self.scope["user"]
        ticket_id = self.scope["url_route"]["kwargs"]["ticket_id"]
        query = parse_qs(self.scope.get("query_string", b"").decode())
        view = await database_sync_to_async(self.make_view)(user, ticket_id, query)
        if view is None:
            await self.close()
            return
        self.pending: set[int] = set()
        self.needs_you = False  # another ticket changed what waits for a person: the navigation's count
        await self.channel_layer.group_add(ticket_group(ticket_id), self.channel_name)
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await relay.ensure_running()  # before the snapshot, so nothing falls between the two
        await self.accept()
        self.opened = True
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
            await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def ticket_event(self, message: dict) -> None:
        if self.view is None:
            return
        self.pending.add(message["event_id"])
        self._schedule(self.view)

    async def dashboard_event(self, message: dict) -> None:
        """Every ticket's events: only another ticket's needs-you changes matter here (this ticket's
        come through its own group)."""
        if self.view is None or message["ticket_id"] == self.view.ticket_id or not needs_you_changed(
                message["kind"]):
            return
        self.needs_you = True
        self._schedule(self.view)

    def _schedule(self, view: PageView) -> None:
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush(view))

    async def _flush(self, view: PageView) -> None:
        """Render pending events, one batch at a time, so messages leave in the order of their state."""
        try:
            while self.pending or self.needs_you:
                await asyncio.sleep(COALESCE_SECONDS)
                batch, self.pending = self.pending, set()
                needs_you, self.needs_you = self.needs_you, False
                try:
                    html = await database_sync_to_async(view.update)(batch) if batch else ""
                    if needs_you and 'id="nav-reviews"' not in html:
                        html += await database_sync_to_async(nav_fragment)()
                except Exception:
                    log.exception("live view: rendering events %s of ticket %s failed", sorted(batch),
                                  view.ticket_id)
                    continue
                if html:
                    await self.send(text_data=html)
        finally:
            self.flushing = None


class DashboardConsumer(ClosingOnShutdown):
    """``ws/dashboard/?view=tickets&page=<n> | view=reviews | view=nav``: the ticket list, the Reviews
    inbox, or only the navigation's count. Each message is whole fragments: no sequence numbers."""

    view: DashboardView | None = None
    flushing: asyncio.Task | None = None

    async def connect(self) -> None:
        if not await self.may_view():
            await self.close()
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        name = query.get("view", ["nav"])[-1]
        view = DashboardView(name if name in ("tickets", "reviews") else "nav", query.get("page", [None])[-1])
        self.kinds: set[str] = set()
        await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
        await relay.ensure_running()
        await self.accept()
        self.opened = True
        await self.send(text_data=await database_sync_to_async(view.snapshot)())
        self.view = view

    async def disconnect(self, code: int) -> None:
        if self.flushing is not None:
            self.flushing.cancel()
        await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)

    async def dashboard_event(self, message: dict) -> None:
        if self.view is None:
            return
        self.kinds.add(message["kind"])
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush(self.view))

    async def _flush(self, view: DashboardView) -> None:
        try:
            while self.kinds:
                await asyncio.sleep(DASHBOARD_COALESCE_SECONDS)
                kinds, self.kinds = self.kinds, set()
                try:
                    html = await database_sync_to_async(view.update)(kinds)
                except Exception:
                    log.exception("live view: rendering the %s dashboard failed", view.view)
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
