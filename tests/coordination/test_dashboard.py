from __future__ import annotations

import re

import pytest
from django.urls import reverse

from coordination.models import Event
from merges.models import MergeAttempt
from tests import factories

pytestmark = pytest.mark.django_db


def svg_nodes(html: str) -> list[str]:
    return re.findall(r'<a href="[^"]*/tasks/([^/"]+)/" class="node', html)


@pytest.fixture
def diamond():
    """A → {B, C} → D: the join of D, mid-merge, with one attempt."""
    ticket = factories.make_ticket("Diamond")
    a = factories.make_task(ticket, "A", status="succeeded", head_sha="a" * 40)
    b = factories.make_task(ticket, "B", [a], status="succeeded")
    c = factories.make_task(ticket, "C", [a], status="failed", error="exit status 1")
    d = factories.make_task(ticket, "D", [b, c])
    join = d.join
    MergeAttempt.objects.create(ticket=ticket, join=join, target_ref=ticket.ref, base_sha=factories.SHA,
                                merge_order=["B", "C"], conflict_scores={"B": 0, "C": 3}, status="conflicted")
    return ticket


@pytest.mark.parametrize("url", ["/", "/tickets/1/", "/tickets/1/tasks/A/"])
def test_anonymous_visitors_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_renders(client):
    assert b'name="password"' in client.get(reverse("login")).content


def test_ticket_list_shows_status_and_progress(bob_client, diamond):
    html = bob_client.get("/").content.decode()
    assert "Diamond" in html
    assert "demo" in html  # the repository
    assert 'class="badge st-pending"' in html
    assert "2/4" in html  # A and B of four tasks succeeded
    assert reverse("coordination:ticket_detail", args=[diamond.pk]) in html


def test_ticket_list_pages_keep_real_links_for_htmx(bob_client):
    repository = factories.make_repository()
    for n in range(60):
        factories.make_ticket(f"T{n}", repository=repository)
    html = bob_client.get("/").content.decode()
    assert 'href="?page=2" hx-get="?page=2"' in html
    fragment = bob_client.get("/?page=2", headers={"HX-Request": "true"}).content.decode()
    assert fragment.lstrip().startswith('<div id="ticket-table">')
    assert "<html" not in fragment


def test_ticket_page_draws_every_task_and_the_join(bob_client, diamond):
    html = bob_client.get(reverse("coordination:ticket_detail", args=[diamond.pk])).content.decode()
    assert sorted(svg_nodes(html)) == ["A", "B", "C", "D"]
    join = diamond.joins.get()
    assert f'<a href="#join-{join.pk}" class="join st-waiting">' in html  # the diamond in the graph
    assert f'id="join-{join.pk}"' in html  # and its card
    for task in diamond.tasks.all():
        assert f'id="task-row-{task.pk}"' in html
    assert 'id="ticket-header"' in html and 'id="dag"' in html and 'id="merge-attempts"' in html
    assert "exit status 1" in html  # C's error in the task table
    assert "aaaaaaaa" in html  # A's head, short


def test_ticket_page_shows_merge_attempts_with_order_and_scores(alice_client, bob_client, diamond):
    url = reverse("coordination:ticket_detail", args=[diamond.pk])
    attempt = MergeAttempt.objects.get()
    admin_link = reverse("admin:merges_mergeattempt_change", args=[attempt.pk])
    html = alice_client.get(url).content.decode()
    assert "<code>B</code> → <code>C</code>" in html
    assert "<code>C</code> 3" in html
    assert admin_link in html
    assert admin_link not in bob_client.get(url).content.decode()  # bob cannot open the admin


def test_ticket_page_connects_the_live_view_and_knows_the_last_event(bob_client, diamond):
    newest = Event.objects.filter(ticket=diamond).latest("id")
    html = bob_client.get(reverse("coordination:ticket_detail", args=[diamond.pk])).content.decode()
    assert f'ws-connect="/ws/tickets/{diamond.pk}/"' in html
    assert f'<span id="ticket-seq" data-seq="{newest.pk}"' in html


def test_unknown_ticket_is_404(bob_client):
    assert bob_client.get("/tickets/999/").status_code == 404


def test_task_page_shows_log_result_and_synthesis_context(bob_client, diamond):
    d = diamond.tasks.get(key="D")
    d.log = "building <things>\nok\n"
    d.result = {"summary": "merged B and C"}
    d.synthesis_context = {"sources": {"B": "added login"}}
    d.save()
    html = bob_client.get(reverse("coordination:task_detail", args=[diamond.pk, "D"])).content.decode()
    assert "building &lt;things&gt;" in html
    assert "&quot;summary&quot;: &quot;merged B and C&quot;" in html
    assert "added login" in html
    assert f'id="task-log-{d.pk}"' in html
    assert f'ws-connect="/ws/tickets/{diamond.pk}/?task={d.pk}"' in html
    assert bob_client.get(reverse("coordination:task_detail", args=[diamond.pk, "nope"])).status_code == 404


def test_a_thousand_task_ticket_renders_in_a_bounded_number_of_queries(bob_client,
                                                                       django_assert_max_num_queries):
    ticket = factories.make_ticket("Big")
    # 10 roots, then layers of 99 tasks each depending on two tasks of the layer before: 1,000 tasks.
    parents_of: dict[str, list[str]] = {f"r{i}": [] for i in range(10)}
    previous = list(parents_of)
    for layer in range(10):
        keys = [f"t{layer}-{i}" for i in range(99)]
        for i, key in enumerate(keys):
            parents_of[key] = [previous[i % len(previous)], previous[(i + 1) % len(previous)]]
        previous = keys
    assert len(parents_of) == 1000
    factories.make_dag(ticket, parents_of)
    url = reverse("coordination:ticket_detail", args=[ticket.pk])
    # session, user, 2 × permissions, then the page's own: none of them per task.
    with django_assert_max_num_queries(20):
        html = bob_client.get(url).content.decode()
    assert len(svg_nodes(html)) == 1000
    assert html.count('class="join st-waiting"') == 990


def test_admin_keeps_the_audit_trail_read_only(alice_client, diamond):
    attempt = MergeAttempt.objects.get()
    event = Event.objects.filter(ticket=diamond).first()
    assert alice_client.get(reverse("admin:merges_mergeattempt_change", args=[attempt.pk])).status_code == 200
    assert alice_client.get(reverse("admin:coordination_event_changelist")).status_code == 200
    assert alice_client.get(reverse("admin:coordination_event_add")).status_code == 403
    assert alice_client.post(reverse("admin:coordination_event_delete", args=[event.pk])).status_code == 403
    assert alice_client.get(reverse("admin:coordination_ticket_change", args=[diamond.pk])).status_code == 200
