"""A big ticket's page keeps its graph and tables in the cache under the ticket's version: reloading an
unchanged ticket skips drawing them, and any event (however it commits) draws them anew."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from coordination.models import Event, Task
from coordination.web import dashboard
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def big():
    ticket = factories.make_ticket("Big")
    factories.make_dag(ticket, {f"t{i}": [] for i in range(dashboard.CACHED_FROM_TASKS)})
    return ticket


def get(client, ticket) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        html = client.get(reverse("coordination:ticket_detail", args=[ticket.pk])).content.decode()
    return re.sub(r'(X-CSRFToken": "|name="csrfmiddlewaretoken" value=")\w+', "", html), len(queries)


def row_status(html: str, task: Task) -> str:
    row = re.search(rf'<div id="task-row-{task.pk}".*?</div>\s*</div>', html, re.S)
    assert row is not None
    return re.search(r'class="badge st-(\w+)"', row.group(0)).group(1)


def test_an_unchanged_ticket_is_not_drawn_again_and_an_event_draws_it_anew(bob_client, big):
    first, drawing = get(bob_client, big)
    again, cached = get(bob_client, big)
    assert again == first
    assert cached < drawing  # the rows, joins, merges and chart are not read

    task = Task.objects.get(ticket=big, key="t7")
    task.transition("ready")  # writes its event in the same transaction
    after, _ = get(bob_client, big)
    assert row_status(first, task) == "pending" and row_status(after, task) == "ready"


def test_an_event_committed_below_the_newest_id_draws_it_anew(bob_client, big):
    older = Event.objects.create(ticket=big, kind="ticket.note")
    Event.objects.create(id=older.pk + 2, ticket=big, kind="ticket.note")
    get(bob_client, big)
    task = Task.objects.get(ticket=big, key="t3")
    Task.objects.filter(pk=task.pk).update(status="ready")
    # as a transaction that took its id earlier but committed later leaves it (PostgreSQL's sequences)
    Event.objects.create(id=older.pk + 1, ticket=big, kind="task.ready", payload={"task_id": task.pk})
    assert dashboard.ticket_version(big.pk) == (older.pk + 2, (older.pk + 2, 3))
    html, _ = get(bob_client, big)
    assert row_status(html, task) == "ready"


def test_log_lines_leave_the_drawing_alone_and_move_the_sequence_number(bob_client, big):
    _, drawing = get(bob_client, big)
    line = Event.objects.create(ticket=big, kind="task.log", payload={"task_id": 1})
    html, cached = get(bob_client, big)
    assert cached < drawing
    assert f'<span id="ticket-seq" data-seq="{line.pk}"' in html


def test_while_a_task_runs_the_timeline_is_drawn_again_but_the_rest_is_kept(bob_client, big):
    task = Task.objects.get(ticket=big, key="t1")
    task.transition("ready")
    Task.objects.filter(pk=task.pk).update(status="running", started_at=timezone.now())
    Event.objects.create(ticket=big, kind="task.running", payload={"task_id": task.pk})
    first, drawing = get(bob_client, big)
    again, cached = get(bob_client, big)
    timeline = re.compile(r'<svg[^>]*class="timeline".*?</svg>', re.S)
    assert timeline.search(first) and timeline.search(again)
    assert "so far" in timeline.search(again).group(0)  # the running bar, drawn up to now
    assert cached < drawing  # the graph, the tables and the chart came from the cache
