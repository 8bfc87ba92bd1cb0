"""The review page's own live view, through the real ASGI stack: only fragments the page has, and the
review itself whenever an event concerns its merge (a queued action, its outcome)."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.test import Client
from django.urls import reverse

from coordination.models import Event, Task
from merges.models import MergeAttempt
from tests import factories
from tests.coordination.test_live import ORIGIN, in_process_layer, live, seq_of, socket  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_layer")]

PAGE_FRAGMENTS = ("review-summary", "review-title", "review-rounds", "ticket-header", "nav-reviews")
TICKET_PAGE_ONLY = ("dag", "task-table", "joins", "merge-attempts", "merge-chart")


@pytest.fixture
def bob() -> list[tuple[bytes, bytes]]:
    """bob's browser (a viewer), signed in through a real session cookie."""
    client = Client()
    client.force_login(factories.bob())
    return [ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode())]


@pytest.fixture
def attempt() -> MergeAttempt:
    ticket = factories.make_ticket("Live review", status="awaiting_review")
    b = factories.make_task(ticket, "B", status="succeeded")
    c = factories.make_task(ticket, "C", status="succeeded")
    d = factories.make_task(ticket, "D", [b, c])
    Event.record(ticket, "ticket.submitted", {"title": ticket.title})
    return MergeAttempt.objects.create(
        ticket=ticket, join=d.join, target_ref=ticket.ref, base_sha=factories.SHA, status="conflicted",
        incoming=[{"name": n, "branch": n, "sha": factories.SHA} for n in "BC"], merge_order=["B"],
        pending_sources=["C"], conflict_tree="f" * 40, partial_sha=factories.SHA)


def path(attempt: MergeAttempt) -> str:
    return f"/ws/tickets/{attempt.ticket_id}/reviews/{attempt.pk}/"


@live
async def test_the_snapshot_holds_the_review_pages_fragments_and_none_of_the_ticket_pages(attempt, bob):
    communicator = socket(path(attempt), bob)
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_from()
    for fragment in PAGE_FRAGMENTS:
        assert f'id="{fragment}"' in snapshot, fragment
    for fragment in TICKET_PAGE_ONLY:
        assert f'id="{fragment}"' not in snapshot, fragment  # the page has no such target: no oobErrorNoTarget
    assert snapshot.count("task-row-") == 3  # B, C and D, the merge's sources and continuation
    await communicator.disconnect()


@live
async def test_an_action_on_this_merge_brings_the_review_and_another_merges_does_not(attempt, bob):
    communicator = socket(path(attempt), bob)
    await communicator.connect()
    await communicator.receive_from()

    def queue_an_approve() -> int:
        MergeAttempt.objects.filter(pk=attempt.pk).update(
            status="running", pending_action={"kind": "approve", "round": 1, "user_id": None})
        return Event.record(attempt.ticket, "review.requested", {"attempt_id": attempt.pk, "action": "approve"}).pk

    event_id = await database_sync_to_async(queue_an_approve)()
    message = await communicator.receive_from(timeout=5)
    assert '<section id="review-summary" class="panel summary state-pending" hx-swap-oob="true"' in message
    assert '<div id="review-rounds" hx-swap-oob="true">' in message and "Approving…" in message
    assert seq_of(message) == event_id

    other = await database_sync_to_async(lambda: Event.record(
        attempt.ticket, "merge.merged", {"attempt_id": attempt.pk + 1000}).pk)()
    message = await communicator.receive_from(timeout=5)
    assert 'id="review-summary"' not in message and 'id="ticket-header"' in message
    assert seq_of(message) == other
    await communicator.disconnect()


@live
async def test_a_source_moving_updates_its_row_only(attempt, bob):
    communicator = socket(path(attempt), bob)
    await communicator.connect()
    await communicator.receive_from()
    def make_d_ready() -> int:
        task = Task.objects.get(ticket=attempt.ticket, key="D")
        task.transition("ready")
        return task.pk

    task_id = await database_sync_to_async(make_d_ready)()
    message = await communicator.receive_from(timeout=5)
    assert f'<div id="task-row-{task_id}" class="row" role="row" hx-swap-oob="true">' in message
    assert 'id="review-rounds"' not in message and 'id="task-table"' not in message
    await communicator.disconnect()


@live
async def test_a_merge_of_another_ticket_is_refused(attempt, bob):
    elsewhere = await database_sync_to_async(lambda: factories.make_ticket(
        "Elsewhere", repository=attempt.ticket.repository).pk)()
    communicator = socket(f"/ws/tickets/{elsewhere}/reviews/{attempt.pk}/", bob)
    connected, _ = await communicator.connect()
    assert not connected


def test_polling_without_a_socket_gets_the_review_when_its_merge_moved(transactional_db, attempt):
    client = Client()
    client.force_login(factories.bob())
    url = reverse("coordination:review_live", args=[attempt.pk])
    seq = Event.objects.filter(ticket=attempt.ticket).latest("id").pk
    Event.objects.filter(ticket=attempt.ticket).update(created_at=Event.objects.first().created_at.replace(year=2000))
    quiet = client.get(url, {"since": seq}).content.decode()
    assert quiet.strip() == f'<span id="ticket-seq" data-seq="{seq}" hidden hx-swap-oob="true"></span>'
    Event.record(attempt.ticket, "review.retried", {"attempt_id": attempt.pk})
    changed = client.get(url, {"since": seq}).content.decode()
    assert 'id="review-rounds"' in changed and 'id="dag"' not in changed
