from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from coordination.models import Event, Task
from coordination.web.permissions import REVIEWERS, VIEWERS, can_operate, can_review, can_view, ensure_groups
from merges.models import ConflictFile, MergeAttempt
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def waiting_review():
    """B and C joined into D; B merged, C conflicted on config.py and waits for a person."""
    ticket = factories.make_ticket("Review me", status="awaiting_review")
    b = factories.make_task(ticket, "B", status="succeeded", title="Timeout 5")
    c = factories.make_task(ticket, "C", status="succeeded", title="Timeout 9")
    e = factories.make_task(ticket, "E", status="succeeded", title="Docs")
    d = factories.make_task(ticket, "D", [b, c, e])
    d.join.status = "awaiting_review"
    d.join.save()
    attempt = MergeAttempt.objects.create(
        ticket=ticket, join=d.join, target_ref=ticket.ref, base_sha=factories.SHA, status="conflicted",
        incoming=[{"name": n, "branch": f"ticket/{ticket.pk}-task/{n}", "sha": factories.SHA} for n in "BCE"],
        merge_order=["E", "B"], conflict_scores={"E": 0, "B": 1, "C": 1}, pending_sources=["C"],
        pairwise_conflicts={"B": {"C": 4, "E": 0}, "C": {"B": 4, "E": 1}, "E": {"B": 0, "C": 1}},
        duration_ms=1234, llm_invocations=1, llm_cost_usd=Decimal("0.0421"), merge_tree_runs=5,
        review_reason="the LLM's resolution of config.py does not parse", resolvers={"config.py": "llm"})
    ConflictFile.objects.create(
        attempt=attempt, path="config.py", kind="content", source="C", hunk_count=2,
        hunks=[{"start": 3, "ours": ["A = 5"], "base": ["A = 1"], "theirs": ["A = 9"]},
               {"start": 9, "ours": ["B = 5"], "base": ["B = 1"], "theirs": ["B = 9"]}],
        resolutions=[{"tier": "llm", "resolver": "llm", "rationale": "both meant a longer timeout",
                      "decided_by": "llm"}, None])
    return attempt


def test_groups_are_there_after_migrate_and_grant_what_they_say(db):
    ensure_groups()  # idempotent: a second run changes nothing
    assert set(Group.objects.values_list("name", flat=True)) >= {VIEWERS, REVIEWERS}
    alice, bob, charlie = factories.alice(), factories.bob(), factories.charlie()
    assert [can_view(alice), can_review(alice), can_operate(alice)] == [True, True, True]
    assert [can_view(bob), can_review(bob), can_operate(bob)] == [True, False, False]
    assert [can_view(charlie), can_review(charlie), can_operate(charlie)] == [False, False, False]
    assert [can_view(factories.anonymous()), can_review(factories.anonymous())] == [False, False]


@pytest.mark.parametrize("name", ["ticket_list", "reviews"])
def test_a_signed_in_user_in_no_group_is_refused(name):
    client = Client()
    client.force_login(factories.charlie())
    assert client.get(reverse(f"coordination:{name}")).status_code == 403


def test_anonymous_visitors_go_to_login_from_the_new_pages(client, waiting_review):
    for url in (reverse("coordination:reviews"), reverse("coordination:merge_attempt", args=[waiting_review.pk]),
                reverse("coordination:live_poll", args=[waiting_review.ticket_id])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_the_inbox_lists_merges_waiting_for_a_person_with_a_count_in_the_navigation(bob_client, waiting_review):
    html = bob_client.get(reverse("coordination:reviews")).content.decode()
    assert reverse("coordination:review", args=[waiting_review.pk]) in html
    assert "Review me" in html and "<code>D</code>" in html
    assert "does not parse" in html
    nav = html.split("</nav>")[0]
    assert f'<a id="nav-reviews" href="{reverse("coordination:reviews")}">Reviews <span class="count"' in nav
    assert ">1</span>" in nav


def test_settled_and_cancelled_merges_leave_the_inbox(bob_client, waiting_review):
    waiting_review.ticket.status = "cancelled"
    waiting_review.ticket.save()
    html = bob_client.get(reverse("coordination:reviews")).content.decode()
    assert "Nothing waits for a person" in html
    assert '<span class="count"' not in html


def test_the_merge_attempt_page_shows_order_scores_heatmap_resolvers_timings_and_cost(bob_client, waiting_review):
    html = bob_client.get(reverse("coordination:merge_attempt", args=[waiting_review.pk])).content.decode()
    assert "<code>E</code> → <code>B</code>" in html
    assert "not merged: <code>C</code>" in html
    assert '<td style="--heat: 1.000" title="4 conflict hunks">4</td>' in html  # B × C, the hottest pair
    assert '<td style="--heat: 0.250" title="1 conflict hunk">1</td>' in html  # C × E
    assert html.count('class="diagonal"') == 3
    assert "both meant a longer timeout" in html  # the LLM's rationale for hunk 1
    assert "1234 ms" in html and "5 merge-tree runs" in html
    assert "$0.0421" in html and "1 call," in html
    assert reverse("coordination:review", args=[waiting_review.pk]) in html
    assert bob_client.get(reverse("coordination:merge_attempt", args=[999])).status_code == 404


def test_ticket_pages_chart_merge_time_and_llm_cost(bob_client, waiting_review):
    url = reverse("coordination:merge_attempt", args=[waiting_review.pk])
    ticket_html = bob_client.get(reverse("coordination:ticket_detail", args=[waiting_review.ticket_id])
                                 ).content.decode()
    assert 'id="merge-chart"' in ticket_html and f'<a href="{url}"><title>merge #{waiting_review.pk}' in ticket_html
    assert "merging 1234 ms, LLM $0.0421" in ticket_html
    list_html = bob_client.get(reverse("coordination:ticket_list")).content.decode()
    assert 'aria-label="merge time and LLM cost per ticket"' in list_html
    assert f"#{waiting_review.ticket_id} Review me: merging 1234 ms" in list_html


def test_polling_without_a_socket_gets_what_changed_since_the_last_event(bob_client, waiting_review):
    ticket = waiting_review.ticket
    url = reverse("coordination:live_poll", args=[ticket.pk])
    Event.objects.filter(ticket=ticket).update(created_at=Event.objects.first().created_at.replace(year=2000))
    seq = Event.objects.filter(ticket=ticket).latest("id").pk
    quiet = bob_client.get(url, {"since": seq}).content.decode()
    assert quiet.strip() == f'<span id="ticket-seq" data-seq="{seq}" hidden hx-swap-oob="true"></span>'
    task = Task.objects.get(ticket=ticket, key="D")
    event = task.transition("ready")
    changed = bob_client.get(url, {"since": seq}).content.decode()
    assert f'id="task-row-{task.pk}"' in changed and f'data-seq="{event.pk}"' in changed
    assert 'id="task-table"' not in changed  # a row, not the table
    snapshot = bob_client.get(url).content.decode()  # no since: everything
    assert 'id="task-table"' in snapshot
    assert bob_client.get(url, {"task": 999}).status_code == 404
