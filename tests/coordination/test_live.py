from __future__ import annotations

import asyncio
import functools
import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from coordination.models import Event, Task, Ticket
from dagmerge_site.asgi import application
from merges.models import MergeAttempt
from tests import factories

# The relay and the consumer read the database from other threads: real commits, no test transaction.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_layer")]

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture
def in_process_layer(settings, fresh_channel_layer):
    """The embedded set-up: no Redis, so events reach sockets through the relay; a quick relay."""
    settings.REDIS_URL = ""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.DAGMERGE_RELAY_INTERVAL_MS = 20


@pytest.fixture
def ticket() -> Ticket:
    ticket = factories.make_ticket("Live")
    a = factories.make_task(ticket, "A")
    factories.make_task(ticket, "B", [a])
    Event.record(ticket, "ticket.submitted", {"title": ticket.title})
    return ticket


@pytest.fixture
def bob() -> list[tuple[bytes, bytes]]:
    """Headers of bob's browser: signed in through a real session cookie."""
    client = Client()
    client.force_login(factories.bob())
    return [ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode())]


def socket(path: str, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    """A websocket through the real ASGI stack: origin check, session, auth, routing, consumer."""
    return WebsocketCommunicator(application, path, headers=headers)


def seq_of(message: str) -> int:
    return int(re.search(r'<span id="ticket-seq" data-seq="(\d+)" hidden hx-swap-oob="true">', message)[1])


def live(test):
    """Run an async test body on its own event loop."""
    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        async_to_sync(test)(*args, **kwargs)
    return run


@live
async def test_anonymous_visitors_are_refused(ticket):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", [ORIGIN])
    connected, _ = await communicator.connect()
    assert not connected


@live
async def test_a_signed_in_user_in_no_group_is_refused(ticket):
    def charlie_cookie() -> bytes:
        client = Client()
        client.force_login(factories.charlie())
        return f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()

    cookie = await database_sync_to_async(charlie_cookie)()
    communicator = socket(f"/ws/tickets/{ticket.pk}/", [ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect()
    assert not connected


@live
async def test_unknown_ticket_is_refused(bob):
    communicator = socket("/ws/tickets/999/", bob)
    connected, _ = await communicator.connect()
    assert not connected


@live
async def test_signed_in_viewer_receives_a_snapshot_of_every_fragment(ticket, bob):
    newest = await database_sync_to_async(lambda: Event.objects.filter(ticket=ticket).latest("id").pk)()
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_from()
    fragments = ("ticket-header", "dag", "timeline", "task-table", "joins-summary", "joins", "merge-attempts",
                 "merge-chart", "nav-reviews")
    for fragment in fragments:
        assert f'id="{fragment}"' in snapshot
    assert snapshot.count('hx-swap-oob="true"') == len(fragments) + 1  # and the sequence number
    assert seq_of(snapshot) == newest
    assert snapshot.count('class="node st-pending"') == 2
    await communicator.disconnect()


@live
async def test_an_event_reaches_the_socket_through_the_relay_as_out_of_band_fragments(ticket, bob):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    await communicator.connect()
    await communicator.receive_from()

    def make_a_ready() -> tuple[int, int]:
        task = Task.objects.get(ticket=ticket, key="A")
        return task.pk, task.transition("ready").pk

    task_id, event_id = await database_sync_to_async(make_a_ready)()
    message = await communicator.receive_from(timeout=5)
    assert f'<div id="task-row-{task_id}" class="row" role="row" hx-swap-oob="true">' in message
    assert f'<svg hx-swap-oob="innerHTML:#dag-node-{task_id}"><a href=' in message
    assert 'class="node st-ready"' in message and 'class="badge st-ready"' in message
    assert 'id="ticket-header"' in message  # the progress bar moved
    assert 'id="task-table"' not in message and 'id="dag"' not in message  # only what changed
    assert seq_of(message) == event_id
    await communicator.disconnect()


@live
async def test_a_burst_of_events_arrives_as_one_message(ticket, bob):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    await communicator.connect()
    await communicator.receive_from()

    def burst() -> int:
        for task in Task.objects.filter(ticket=ticket):
            task.transition("ready")
            task.transition("claimed")
        return Event.objects.latest("id").pk

    newest = await database_sync_to_async(burst)()
    message = await communicator.receive_from(timeout=5)
    assert message.count('class="badge st-claimed"') == 2
    assert seq_of(message) == newest
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


@live
async def test_a_new_task_brings_the_whole_table_and_graph(ticket, bob):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    await communicator.connect()
    await communicator.receive_from()

    def add_task() -> None:
        task = factories.make_task(ticket, "C")
        Event.record(ticket, "task.created", {"task": "C", "task_id": task.pk})

    await database_sync_to_async(add_task)()
    message = await communicator.receive_from(timeout=5)
    assert 'id="task-table"' in message and 'id="dag"' in message
    assert message.count('class="node st-pending"') == 3
    await communicator.disconnect()


@live
async def test_reconnecting_with_the_last_seen_event_gets_no_snapshot_when_nothing_happened(ticket, bob):
    def page_seq() -> int:
        Event.objects.filter(ticket=ticket).update(created_at=Event.objects.first().created_at.replace(year=2000))
        return Event.objects.filter(ticket=ticket).latest("id").pk

    since = await database_sync_to_async(page_seq)()
    communicator = socket(f"/ws/tickets/{ticket.pk}/?since={since}", bob)
    await communicator.connect()
    message = await communicator.receive_from()
    assert seq_of(message) == since
    assert 'id="ticket-header"' not in message
    await communicator.disconnect()

    stale = socket(f"/ws/tickets/{ticket.pk}/?since={since - 1}", bob)
    await stale.connect()
    assert 'id="ticket-header"' in await stale.receive_from()  # it missed one: a snapshot
    await stale.disconnect()


@live
async def test_task_page_appends_only_the_new_end_of_the_log(ticket, bob):
    task = await database_sync_to_async(lambda: Task.objects.get(ticket=ticket, key="A"))()
    communicator = socket(f"/ws/tickets/{ticket.pk}/?task={task.pk}", bob)
    await communicator.connect()
    snapshot = await communicator.receive_from()
    assert f'id="task-summary-{task.pk}"' in snapshot and f'id="task-log-{task.pk}"' in snapshot

    def log(text: str) -> None:
        Task.objects.filter(pk=task.pk).update(log=Task.objects.get(pk=task.pk).log + text)
        Event.record(ticket, "task.log", {"task": "A", "task_id": task.pk})

    await database_sync_to_async(log)("first line\n")
    assert f'hx-swap-oob="beforeend:#task-log-{task.pk}">first line\n</pre>' in await communicator.receive_from(5)
    await database_sync_to_async(log)("second <line>\n")
    message = await communicator.receive_from(timeout=5)
    assert f'hx-swap-oob="beforeend:#task-log-{task.pk}">second &lt;line&gt;\n</pre>' in message
    assert "first line" not in message
    await communicator.disconnect()


@live
async def test_server_shutdown_closes_with_1012_so_the_browser_reconnects(ticket, bob):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    await communicator.connect()
    await communicator.receive_from()
    communicator.future.cancel()  # what daphne does to every application when it stops
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    assert communicator.output_queue.get_nowait() == {"type": "websocket.close", "code": 1012}


def test_an_announcement_the_channel_layer_cannot_take_breaks_nothing_after_the_commit(settings, monkeypatch):
    """With Redis, an event is announced after its commit; Redis restarting must not stop what the same
    commit handed over next (a job), nor make the caller fail after its work was saved."""
    from django.db import transaction

    from coordination.web import live

    class DownLayer:
        async def group_send(self, group, message):
            raise ConnectionError("Redis is restarting")

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(live, "get_channel_layer", lambda: DownLayer())
    ticket = factories.make_ticket("Announced")
    handed_over = []
    with transaction.atomic():
        Event.record(ticket, "ticket.note", {})
        transaction.on_commit(lambda: handed_over.append("job"))

    assert handed_over == ["job"]
    assert Event.objects.filter(ticket=ticket, kind="ticket.note").exists()



def test_announcements_go_out_in_order_from_the_announcer_not_from_the_committing_thread(settings, monkeypatch):
    """The jobs a commit hands over go first: the committing thread only queues the announcements, and
    the process's announcer thread sends them, in the order of the events."""
    import threading

    from django.db import transaction

    from coordination.web import live

    sent, go = [], threading.Event()

    class RecordingLayer:
        async def group_send(self, group, message):
            go.wait(30)  # held until the commit's callbacks ran: the order below is not left to chance
            sent.append((group, message.get("event_id"), threading.current_thread().name))

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(live, "get_channel_layer", lambda: RecordingLayer())
    ticket = factories.make_ticket("Announced")
    handed_over = []
    with transaction.atomic():
        first = Event.record(ticket, "ticket.note", {})
        second = Event.record(ticket, "ticket.note", {})
        transaction.on_commit(lambda: handed_over.append("job"))
    assert handed_over == ["job"]  # handed over while the announcer is still held: nothing waited for it
    go.set()
    live.ANNOUNCER.flush(timeout=60)

    assert [(group, event_id) for group, event_id, _ in sent if group.startswith("ticket-")] == [
        (f"ticket-{ticket.pk}", first.pk), (f"ticket-{ticket.pk}", second.pk)]
    assert {thread for _, _, thread in sent} == {"dagmerge-announcer"}

@live
async def test_the_ticket_list_follows_every_ticket_over_its_socket(ticket, bob):
    communicator = socket("/ws/dashboard/?view=tickets&page=1", bob)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_from()
    assert '<div id="ticket-table" hx-swap-oob="true">' in snapshot and 'id="nav-reviews"' in snapshot
    assert f'id="ticket-row-{ticket.pk}"' in snapshot

    def another_ticket() -> int:
        other = factories.make_ticket("Arrived later", repository=ticket.repository)
        Event.record(other, "ticket.submitted", {"title": other.title})
        return other.pk

    other_id = await database_sync_to_async(another_ticket)()
    message = await communicator.receive_from(timeout=5)
    assert f'id="ticket-row-{other_id}"' in message and "Arrived later" in message
    await communicator.disconnect()


@live
async def test_the_inbox_and_every_pages_count_follow_merges_waiting_for_a_person(ticket, bob):
    inbox = socket("/ws/dashboard/?view=reviews", bob)
    await inbox.connect()
    assert "Nothing waits for a person" in await inbox.receive_from()
    nav = socket("/ws/dashboard/?view=nav", bob)
    await nav.connect()
    first = await nav.receive_from()
    assert 'id="nav-reviews"' in first and 'id="ticket-table"' not in first and 'id="inbox"' not in first

    def conflict() -> int:
        a, b = Task.objects.filter(ticket=ticket).order_by("key")
        attempt = MergeAttempt.objects.create(ticket=ticket, task=b, target_ref=ticket.ref, base_sha=factories.SHA,
                                              status="conflicted", review_reason="two tasks disagree")
        Event.record(ticket, "merge.conflicted", {"attempt_id": attempt.pk, "join_id": None})
        return attempt.pk

    attempt_id = await database_sync_to_async(conflict)()
    message = await inbox.receive_from(timeout=5)
    assert f'id="inbox-{attempt_id}"' in message and "two tasks disagree" in message
    assert '<span class="count" title="1 merge waiting for a person">1</span>' in message
    assert '<span class="count"' in await nav.receive_from(timeout=5)
    await inbox.disconnect()
    await nav.disconnect()


@live
async def test_a_ticket_page_counts_what_waits_on_other_tickets_too(ticket, bob):
    communicator = socket(f"/ws/tickets/{ticket.pk}/", bob)
    await communicator.connect()
    await communicator.receive_from()

    def elsewhere(kind: str) -> None:
        other = factories.make_ticket("Elsewhere", repository=ticket.repository)
        task = factories.make_task(other, "Z")
        if kind == "task.log":
            Event.record(other, "task.log", {"task": "Z", "task_id": task.pk})
        else:
            MergeAttempt.objects.create(ticket=other, task=task, target_ref=other.ref, base_sha=factories.SHA,
                                        status="conflicted")
            Event.record(other, kind, {"attempt_id": None, "join_id": None})

    await database_sync_to_async(elsewhere)("task.log")
    assert await communicator.receive_nothing(timeout=0.5)  # another ticket's log: nothing here changes
    await database_sync_to_async(elsewhere)("merge.conflicted")
    message = await communicator.receive_from(timeout=5)
    assert 'id="nav-reviews"' in message and '<span class="count"' in message
    assert 'id="ticket-header"' not in message and "ticket-seq" not in message  # this ticket did not move
    await communicator.disconnect()


@live
async def test_the_dashboard_socket_refuses_anonymous_visitors():
    communicator = socket("/ws/dashboard/?view=tickets", [ORIGIN])
    connected, _ = await communicator.connect()
    assert not connected
