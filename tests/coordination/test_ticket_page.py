"""The ticket page for a person with work to do: what needs them, what went wrong, views that scale."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from coordination.models import Event, Task
from coordination.review.live import review_live_view
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from tests import factories

pytestmark = pytest.mark.django_db

DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture
def three_joins():
    """D ← {A, B} merged clean; E ← {A, C} waits for a person (3 hunks); F ← {B, C} waits for its sources."""
    ticket = factories.make_ticket("Three joins", status="awaiting_review")
    a, b = (factories.make_task(ticket, k, status="succeeded") for k in "AB")
    c = factories.make_task(ticket, "C", status="running", started_at=timezone.now() - timedelta(seconds=75))
    d = factories.make_task(ticket, "D", [a, b], status="running", started_at=timezone.now())
    e = factories.make_task(ticket, "E", [a, c])
    f = factories.make_task(ticket, "F", [b, c])
    for join, status in ((d.join, "merged"), (e.join, "awaiting_review")):
        join.status = status
        join.save()
    merge = dict(ticket=ticket, target_ref=ticket.ref, base_sha=factories.SHA)
    MergeAttempt.objects.create(join=d.join, status="merged", merge_order=["A", "B"],
                                conflict_scores={"A": 0, "B": 0}, duration_ms=42, **merge)
    review = MergeAttempt.objects.create(join=e.join, status="conflicted", merge_order=["A"],
                                         pending_sources=["C"], conflict_scores={"A": 0, "C": 3},
                                         review_reason="3 conflict hunks, over the threshold of 1", **merge)
    ConflictFile.objects.create(attempt=review, path="settings.py", source="C", hunk_count=3)
    return ticket, {t.key: t for t in (a, b, c, d, e, f)}, review


def page(client, ticket) -> str:
    return client.get(reverse("coordination:ticket_detail", args=[ticket.pk])).content.decode()


def test_joins_are_one_table_and_the_clean_ones_are_folded_away(bob_client, three_joins):
    ticket, tasks, review = three_joins
    html = page(bob_client, ticket)
    rows = {k: re.search(rf'<div id="join-{tasks[k].join.pk}" class="([^"]+)"', html)[1] for k in "DEF"}
    assert rows == {"D": "row clean", "E": "row", "F": "row"}
    assert "3 joins · <strong class=\"attention\">1 needs a look</strong> · 1 merged clean" in html
    assert '<label for="show-clean" class="toggle-label">' in html  # shows them, without JavaScript
    e_row = html[html.index(f'id="join-{tasks["E"].join.pk}"'):]
    e_row = e_row[: e_row.index("</div>")]
    assert f'href="{reverse("coordination:review", args=[review.pk])}">review</a>' in e_row
    assert "<code>A</code> 0, <code>C</code> 3" in e_row and "3 conflict hunks, over the threshold" in e_row
    assert "class=\"card\"" not in html  # no cards any more


def test_task_rows_say_how_long_each_run_took_and_count_on_while_it_runs(bob_client, three_joins):
    ticket, tasks, _ = three_joins
    done = tasks["A"]
    done.started_at, done.finished_at = timezone.now() - timedelta(seconds=125), timezone.now()
    done.save()
    html = page(bob_client, ticket)
    row = re.search(rf'<div id="task-row-{done.pk}".*?</div>', html)[0]
    assert ">2 min 05 s</span>" in row and re.search(rf'<time datetime="[^"]+">{DATE}</time>', row)
    running = re.search(rf'<div id="task-row-{tasks["C"].pk}".*?</div>', html)[0]
    assert re.search(r'<time class="elapsed" data-since="[^"]+" title="running since [^"]+">1 min 1\d s</time>',
                     running)
    assert re.search(r'<div id="task-row-\d+" class="row" role="row"><span role="cell"><a href="[^"]+/E/">',
                     html)  # E never ran: a dash
    assert "dagmerge-ticket.js" in html  # the timers' and the lineage's script


def test_a_ticket_waiting_for_review_says_so_with_the_reason_and_the_way_in(bob_client, three_joins):
    ticket, _, review = three_joins
    html = page(bob_client, ticket)
    banner = html[html.index('<div class="needs-you">'):]
    banner = banner[: banner.index("</div>")]
    assert f"merge #{review.pk} (join → E) waits for a person: 3 conflict hunks, over the threshold of 1" in banner
    assert f'<a class="button primary" href="{reverse("coordination:review", args=[review.pk])}">Open the review' \
        in banner
    assert html.index('class="needs-you"') < html.index("<h1>")  # before anything else
    # The review page itself does not point at itself, neither as served nor as its socket redraws it.
    review_html = bob_client.get(reverse("coordination:review", args=[review.pk])).content.decode()
    assert 'class="needs-you"' not in review_html
    assert 'class="needs-you"' not in review_live_view(ticket.pk, review.pk, factories.bob()).connect(None)


def test_the_title_carries_the_count_and_every_page_has_an_icon(bob_client, three_joins):
    ticket, _, _ = three_joins
    html = page(bob_client, ticket)
    assert f"<title>(1) #{ticket.pk} Three joins · dagmerge</title>" in html
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert "<title>(1) Tickets · dagmerge</title>" in bob_client.get("/").content.decode()


def test_a_failed_publish_is_a_problem_on_the_ticket(bob_client, three_joins):
    ticket, _, _ = three_joins
    ticket.head_sha, ticket.published_sha = "f" * 40, "e" * 40
    ticket.save()
    Event.record(ticket, "publish.failed", {"error": "! [rejected] ticket/1 (stale info)\n"})
    html = page(bob_client, ticket)
    problem = html[html.index('<div class="problem">'):]
    assert "Problem: publishing failed." in problem and "it is still at <code" in problem
    assert "! [rejected] ticket/1 (stale info)" in problem
    assert "(not published: see the problem above)" in html
    Event.record(ticket, "ticket.published", {"sha": ticket.head_sha})
    ticket.published_sha = ticket.head_sha
    ticket.save()
    assert 'class="problem"' not in page(bob_client, ticket)


def test_the_graph_carries_the_lineage_and_the_timeline_draws_what_ran(bob_client, three_joins):
    ticket, tasks, _ = three_joins
    html = page(bob_client, ticket)
    e = tasks["E"]
    assert re.search(rf'<g id="dag-node-{e.pk}" class="n" data-n="{e.pk}" data-p="(\d+) (\d+)"', html)
    assert f'data-e="{tasks["A"].pk}>{e.pk}"' in html
    timeline = html[html.index('id="timeline"'):]
    assert "timeline of 3 tasks" in timeline  # C and D run, E's inputs met in a merge; A, B, F: no lane
    assert "C: run" in timeline and "so far (running)" in timeline
    assert "D: merge in" in timeline and "(merged)" in timeline and "E: merge in" in timeline
    assert "(conflicted)" in timeline


def test_a_dropped_source_is_said_and_drawn(alice_client, three_joins):
    ticket, tasks, review = three_joins
    ReviewAction.objects.create(attempt=review, user=factories.alice(), action="drop_source",
                                detail={"source": "C"})
    c = tasks["C"]
    assert "dag-ghost" not in page(alice_client, ticket)  # asked for, not carried out: C is still a source
    tasks["E"].join.sources.remove(c)  # what carrying out the drop does, with the re-run of C
    Task.objects.filter(pk=c.pk).update(status="pending")
    html = page(alice_client, ticket)
    assert f'id="dag-ghost-{c.pk}"' in html and f'id="dag-node-{c.pk}"' in html and "↻ C" in html
    assert "<code>C</code> dropped by alice: it runs again on its own" in html  # on E's join row
    row = re.search(rf'<div id="task-row-{c.pk}".*?</div>', html)[0]
    assert f"runs again on its own: dropped from merge #{review.pk}" in row


def test_the_review_page_says_what_dropping_a_source_does_before_the_click(alice_client, three_joins):
    _, _, review = three_joins
    html = alice_client.get(reverse("coordination:review", args=[review.pk])).content.decode()
    means = html[html.index("<strong>Dropping <code>C</code></strong> means:"):html.index("Drop <code>C</code>: merge")]
    assert "the other sources are merged, and <code>E</code> starts from that merge, without waiting for" in means
    assert "it runs again on its own, on the merged head" in means
    assert "its re-run (<code>↻ C</code>) as a node of its own" in means


def test_a_viewer_is_not_shown_the_decision_shortcuts(bob_client, alice_client, three_joins):
    _, _, review = three_joins
    url = reverse("coordination:review", args=[review.pk])
    keys = bob_client.get(url).content.decode().split('<details class="keys">')[1].split("</details>")[0]
    assert "next / previous unresolved hunk" in keys
    assert "take ours" not in keys and "approve" not in keys and "<kbd>o</kbd>" not in keys
    assert "take ours / theirs" in alice_client.get(url).content.decode()


def test_every_page_writes_dates_one_way_and_counts_in_words(bob_client, three_joins):
    ticket, tasks, review = three_joins
    one = factories.make_ticket("One task", repository=ticket.repository)
    factories.make_task(one, "only", status="succeeded", started_at=timezone.now(), finished_at=timezone.now())
    ReviewAction.objects.create(attempt=review, user=factories.alice(), action="retry_with_hint",
                                detail={"hint": "keep both"})
    pages = [page(bob_client, ticket), page(bob_client, one), bob_client.get("/").content.decode(),
             bob_client.get(reverse("coordination:task_detail", args=[one.pk, "only"])).content.decode(),
             bob_client.get(reverse("coordination:reviews")).content.decode(),
             bob_client.get(reverse("coordination:review", args=[review.pk])).content.decode()]
    for html in pages:
        stamps = re.findall(r"<time[^>]*>([^<]*)</time>", html)
        assert stamps and all(re.fullmatch(DATE, s) or re.fullmatch(r"[\d.]+ m?s|\d+ min \d\d s", s)
                              for s in stamps), stamps
        assert not re.search(r"\b(a\.m\.|p\.m\.|Jan\.|Feb\.|Dec\.)", html)
    assert "1/1 task succeeded" in pages[1] and "0/1 task" not in pages[1]
    assert "1/1 task</td>" in pages[2] and "2/6 tasks</td>" in pages[2]
    assert "1 merge waiting for a person" in pages[4]


def test_a_failed_ticket_offers_to_rerun_its_failed_tasks_to_reviewers(alice_client, bob_client):
    ticket = factories.make_ticket("Broke", status="failed", error="task(s) failed: A")
    factories.make_task(ticket, "A", status="failed", error="command exited with status 1")
    url = reverse("coordination:rerun_failed", args=[ticket.pk])
    assert f'href="{url}" hx-get="{url}" hx-target="#operation">Re-run 1 failed task…</a>' in page(alice_client, ticket)
    assert url not in page(bob_client, ticket)


def test_a_user_in_no_group_gets_a_page_with_navigation_a_way_out_and_the_group_to_ask_for(client):
    client.force_login(factories.charlie())
    response = client.get("/")
    assert response.status_code == 403
    html = response.content.decode()
    assert '<header class="topbar">' in html and "Log out charlie" in html and "no access" in html
    assert "You are signed in as <strong>charlie</strong>. Reading the dashboard needs the group viewers" in html
    assert 'action="/accounts/logout/"' in html and "Log out and sign in as someone else" in html
    assert "ws-connect" not in html  # no socket a user in no group would be refused


def test_a_viewer_refused_an_action_is_told_which_group_may(bob_client, three_joins):
    ticket, _, _ = three_joins
    response = bob_client.post(reverse("coordination:cancel_ticket", args=[ticket.pk]))
    assert response.status_code == 403
    assert "needs the group reviewers" in response.content.decode()
