"""The review page's doors with Django's test client: rendering, decisions, rights, the server's gate.

The merges themselves (approve, retry, drop) run on real git in tests/browser; here the attempt is
written directly, as a conflict would leave it.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from coordination.models import Event
from merges import review
from merges.models import ConflictFile, MergeAttempt, RecordedResolution, ReviewAction
from tests import factories

pytestmark = pytest.mark.django_db

@pytest.fixture
def attempt() -> MergeAttempt:
    return factories.conflicted_attempt()


def url(name: str, attempt: MergeAttempt, *args) -> str:
    return reverse(f"coordination:{name}", args=[attempt.pk, *args])


def files(attempt: MergeAttempt) -> dict[str, ConflictFile]:
    return {f.path: f for f in attempt.conflict_files.all()}


def test_the_page_shows_sides_origins_diffs_cards_and_what_remains(alice_client, attempt):
    html = alice_client.get(url("review", attempt)).content.decode()
    assert "Make every timeout 9 seconds." in html and "Short timeouts" in html  # where each side came from
    assert "Ours: the ticket branch with B" in html and "Theirs: <code>C</code>" in html
    config = files(attempt)["config.txt"]
    assert f'id="hunk-{config.pk}-0"' in html and f'id="hunk-{config.pk}-2"' in html
    assert "proposal: resolver: union" in html and "decided by resolver: union" in html
    # each side against the base, the changed words marked, three lines of context around the hunk
    assert '<span class="d del">-<mark>line</mark> <mark>15</mark></span>' in html
    assert '<span class="d add">+<mark>B</mark> <mark>= 9</mark></span>' in html
    assert '<span class="d ctx"> line 12</span>' in html and '<span class="d ctx"> line 18</span>' in html
    assert '<span class="d ctx"> line 11</span>' not in html
    assert '<span class="d"> line 15</span>' in html  # the base, visible
    assert "Non-conflicting changes, already applied" in html and "+line 1 (clean change)" in html
    assert '<span class="n">4</span> remaining in 3 files' in html  # 2 hunks, the binary and the modify/delete
    assert f'href="#hunk-{config.pk}-1"' in html  # next unresolved
    assert "binary:" in html and "modify/delete:" in html and "deleted it; ours changed it" in html
    assert 'value="keep"' in html and 'value="delete"' in html
    assert 'id="approve"' in html and "Retry the LLM with this hint" in html and 'value="C"' in html
    assert "config.txt: 2 undecided" in html  # the gate, shown before anyone tries


def test_a_viewer_reads_the_review_but_sees_no_action_and_is_refused_every_action(bob_client, attempt):
    html = bob_client.get(url("review", attempt)).content.decode()
    assert "Make every timeout 9 seconds." in html
    assert 'name="choice"' not in html and 'id="approve"' not in html and "<textarea" not in html
    config = files(attempt)["config.txt"]
    for action in (url("decide_hunk", attempt, config.pk, 1), url("undo_hunk", attempt, config.pk, 1),
                   url("decide_file", attempt, config.pk), url("approve", attempt),
                   url("retry_with_hint", attempt), url("drop_source", attempt)):
        assert bob_client.post(action, {"choice": "ours", "hint": "x", "source": "C"}).status_code == 403, action
    assert not ReviewAction.objects.exists()


def test_anonymous_is_sent_to_log_in_and_posts_need_csrf(client, attempt):
    response = client.get(url("review", attempt))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(factories.alice())
    config = files(attempt)["config.txt"]
    assert strict.post(url("decide_hunk", attempt, config.pk, 1), {"choice": "ours"}).status_code == 403


def test_deciding_a_hunk_with_htmx_swaps_the_file_and_the_summary(alice_client, attempt):
    config = files(attempt)["config.txt"]
    response = alice_client.post(url("decide_hunk", attempt, config.pk, 1), {"choice": "theirs"},
                                 headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'\n<section id="file-{config.pk}"') or f'<section id="file-{config.pk}"' in html[:200]
    assert "decided by person: alice" in html
    assert '<span class="choice" title="what this hunk holds">theirs</span>' in html
    assert '<section id="review-summary" class="panel summary state-open" hx-swap-oob="true"' in html
    assert '<span class="n">3</span> remaining' in html
    config.refresh_from_db()
    assert review.result_text(config).count("B = 9") == 1
    action = ReviewAction.objects.get(action="decide_hunk")
    assert action.user.username == "alice" and "-B = 5" in action.detail["diff"]


def test_without_htmx_a_decision_redirects_back_to_its_hunk(alice_client, attempt):
    config = files(attempt)["config.txt"]
    response = alice_client.post(url("decide_hunk", attempt, config.pk, 2), {"choice": "edit", "text": "C = 7"})
    assert response.status_code == 302 and response["Location"].endswith(f"#hunk-{config.pk}-2")
    config.refresh_from_db()
    assert "C = 7" in review.result_text(config)
    undo = alice_client.post(url("undo_hunk", attempt, config.pk, 2))
    assert undo.status_code == 302
    config.refresh_from_db()
    assert "C = 7" not in review.result_text(config)


def test_approving_with_anything_undecided_is_refused_by_the_server(alice_client, attempt):
    response = alice_client.post(url("approve", attempt), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 409
    assert "Refused by the server" in html and "config.txt: 2 undecided" in html and "logo.png" in html
    plain = alice_client.post(url("approve", attempt))
    assert plain.status_code == 302 and plain["Location"] == url("review", attempt)
    attempt.refresh_from_db()
    assert attempt.status == "conflicted"
    assert not ReviewAction.objects.filter(action="approve").exists()


def test_markers_typed_into_an_edit_keep_the_gate_closed(alice_client, attempt):
    f = files(attempt)
    for index in (1, 2):
        alice_client.post(url("decide_hunk", attempt, f["config.txt"].pk, index), {"choice": "ours"})
    alice_client.post(url("decide_file", attempt, f["old.txt"].pk), {"choice": "keep"})
    alice_client.post(url("decide_file", attempt, f["config.txt"].pk),
                      {"choice": "edit", "text": "<<<<<<< ours\nA\n=======\nB\n>>>>>>> theirs\n"})
    problems = review.gate_problems(attempt)
    assert "conflict markers left in config.txt" in problems
    assert alice_client.post(url("approve", attempt), headers={"HX-Request": "true"}).status_code == 409


def test_modify_delete_is_settled_from_its_card(alice_client, attempt):
    old = files(attempt)["old.txt"]
    alice_client.post(url("decide_file", attempt, old.pk), {"choice": "delete"}, headers={"HX-Request": "true"})
    old.refresh_from_db()
    assert old.result_deleted and review.remaining_hunks(old) == 0
    html = alice_client.post(url("decide_file", attempt, old.pk), {"choice": "keep"},
                             headers={"HX-Request": "true"}).content.decode()
    old.refresh_from_db()
    assert not old.result_deleted and review.result_text(old) == "old, changed\n"
    assert "Decided for the whole file by alice" in html


def test_a_retry_needs_a_hint(alice_client, attempt):
    response = alice_client.post(url("retry_with_hint", attempt), {"hint": "  "}, headers={"HX-Request": "true"})
    assert response.status_code == 422 and "a retry needs a hint" in response.content.decode()


def test_the_inbox_links_the_review_and_the_attempt_page_offers_it(bob_client, attempt):
    assert url("review", attempt) in bob_client.get(reverse("coordination:reviews")).content.decode()
    assert url("review", attempt) in bob_client.get(reverse("coordination:merge_attempt", args=[attempt.pk])
                                                    ).content.decode()


def test_the_admin_keeps_review_actions_read_only_with_filters(alice_client, attempt):
    config = files(attempt)["config.txt"]
    alice_client.post(url("decide_hunk", attempt, config.pk, 1), {"choice": "ours"})
    action = ReviewAction.objects.get()
    changelist = reverse("admin:merges_reviewaction_changelist")
    assert alice_client.get(changelist, {"action": "decide_hunk"}).status_code == 200
    assert alice_client.get(reverse("admin:merges_reviewaction_change", args=[action.pk])).status_code == 200
    assert alice_client.post(reverse("admin:merges_reviewaction_delete", args=[action.pk])).status_code == 403
    assert alice_client.get(reverse("admin:merges_conflictfile_changelist"), {"proposed_by": "git"}).status_code == 200
    assert alice_client.get(reverse("admin:merges_mergeattempt_changelist"), {"status": "conflicted"}
                            ).status_code == 200


def _decide_everything(client, attempt) -> None:
    f = files(attempt)
    client.post(url("decide_hunk", attempt, f["config.txt"].pk, 1), {"choice": "both_theirs_first"})
    client.post(url("decide_hunk", attempt, f["config.txt"].pk, 2), {"choice": "ours"})
    client.post(url("decide_file", attempt, f["logo.png"].pk), {"choice": "theirs"})
    client.post(url("decide_file", attempt, f["old.txt"].pk), {"choice": "keep"})


def test_approving_answers_at_once_with_the_merge_queued_and_nothing_left_to_decide(alice_client, attempt):
    _decide_everything(alice_client, attempt)
    response = alice_client.post(url("approve", attempt), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith('<section id="review-summary" class="panel summary state-pending"')
    assert "Approving…" in html and "Asked by <strong>alice</strong>" in html
    assert '<div id="review-rounds" hx-swap-oob="true">' in html and 'name="choice"' not in html
    assert "<textarea" not in html
    attempt.refresh_from_db()
    assert attempt.status == "running" and attempt.pending_action["kind"] == "approve"
    assert Event.objects.filter(kind="review.requested", payload__attempt_id=attempt.pk).exists()
    page = alice_client.get(url("review", attempt)).content.decode()
    assert "Approving…" in page and 'id="approve"' not in page and 'name="choice"' not in page


def test_an_approved_round_stays_on_the_page_as_its_record(alice_client, attempt):
    _decide_everything(alice_client, attempt)
    alice_client.post(url("approve", attempt))
    # What the merge job leaves once the reviewed round is committed: the next round, the attempt merged.
    MergeAttempt.objects.filter(pk=attempt.pk).update(status="merged", round=2, pending_action={},
                                                      result_sha="e" * 40, pending_sources=[])
    html = alice_client.get(url("review", attempt)).content.decode()
    assert "No conflicted file" not in html and 'name="choice"' not in html and "<textarea" not in html
    assert 'id="round-1"' in html and "approved</span>\n        by <strong>alice</strong>" in html
    config = files(attempt)["config.txt"]
    record = html[html.index(f'id="hunk-{config.pk}-1"'):html.index(f'id="hunk-{config.pk}-2"')]
    assert "decided by person: alice" in record and ">both, theirs first</span>" in record and "<time" in record
    assert "line 15" in record
    assert 'by alice: <strong class="choice">theirs (whole file)</strong>' in html
    assert 'by alice: <strong class="choice">kept the changed file (whole file)</strong>' in html
    assert "<h2>Merged</h2>" in html and "Approved by <strong>alice</strong>" in html


def test_retry_is_disabled_with_its_reason_without_an_agent_and_refused_in_words(alice_client, attempt,
                                                                               monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    html = alice_client.get(url("review", attempt)).content.decode()
    assert 'id="retry" disabled' in html and 'class="notice warning" id="retry-blocked"' in html
    assert "Retry is not available: no ANTHROPIC_API_KEY" in html
    response = alice_client.post(url("retry_with_hint", attempt), {"hint": "keep both"},
                                 headers={"HX-Request": "true"})
    answer = response.content.decode()
    assert response.status_code == 409 and "Refused by the server" in answer and "no ANTHROPIC_API_KEY" in answer
    attempt.refresh_from_db()
    assert attempt.status == "conflicted" and not ReviewAction.objects.filter(action="retry_with_hint").exists()


def test_a_retry_that_brought_no_proposal_is_a_warning_not_a_success(alice_client, attempt):
    alice = factories.alice()
    ReviewAction.objects.create(attempt=attempt, user=alice, action="retry_with_hint", detail={"hint": "x"})
    ReviewAction.objects.create(attempt=attempt, user=alice, action="retry_result",
                                detail={"hint": "x", "outcome": "LLM budget exhausted", "llm_error": "", "round": 1})
    html = alice_client.get(url("review", attempt)).content.decode()
    assert '<p class="notice warning" role="alert">The agent was asked again with the hint and did not settle the ' \
           'conflict: LLM budget exhausted</p>' in html
    assert 'class="notice info"' not in html


def test_a_viewer_is_shown_no_decision_shortcut(bob_client, alice_client, attempt):
    keys = bob_client.get(url("review", attempt)).content.decode().split('<details class="keys">')[1]
    assert "next / previous unresolved hunk" in keys and "take ours" not in keys and "approve" not in keys
    assert "take ours" in alice_client.get(url("review", attempt)).content.decode()


def test_the_merge_page_and_the_review_page_give_each_hunk_the_same_line_and_who_decided(alice_client, attempt):
    config = files(attempt)["config.txt"]
    alice_client.post(url("decide_hunk", attempt, config.pk, 1), {"choice": "both_theirs_first"})
    review_html = alice_client.get(url("review", attempt)).content.decode()
    merge_html = alice_client.get(reverse("coordination:merge_attempt", args=[attempt.pk])).content.decode()
    for index, line in enumerate((5, 15, 25)):
        assert f'id="hunk-{config.pk}-{index}" class="hunk' in review_html
        assert f'data-line="{line}"' in review_html and f"{index + 1} (line {line})" in merge_html
    row = merge_html[merge_html.index(f'<tr id="hunk-{config.pk}-1">'):]
    row = row[:row.index("</tr>")]
    assert '<td class="decided-by">person: alice' in row and '<td class="choice">both, theirs first</td>' in row
    assert "<time" in row and url("review", attempt) + "#round-1" in row
    assert '<td class="decided-by">resolver: union' in merge_html  # a machine's hunk: what settled it
    assert f'href="{url("review", attempt)}#round-1">Round 1</a>' in merge_html  # the merge's review rounds


def test_the_admin_reads_decisions_as_diffs_and_events_newest_first_by_ticket(alice_client, attempt):
    config = files(attempt)["config.txt"]
    alice_client.post(url("decide_hunk", attempt, config.pk, 1), {"choice": "theirs"})
    action = ReviewAction.objects.get()
    page = alice_client.get(reverse("admin:merges_reviewaction_change", args=[action.pk])).content.decode()
    assert '<span style="display:block;background:#fde8e8;color:#7f1d1d">-B = 5</span>' in page
    assert '<span style="display:block;"> B = 9</span>' in page  # theirs, kept: the markers around it went
    assert '<span style="display:block;color:#687184">@@ -13,13 +13,7 @@</span>' in page
    assert "hunk 2 · → theirs" in page
    conflict_page = alice_client.get(reverse("admin:merges_conflictfile_change", args=[config.pk])).content.decode()
    assert "<td>2 (line 15)</td><td>person: alice</td><td>theirs</td>" in conflict_page
    other = factories.make_ticket("Other", repository=attempt.ticket.repository)
    first, second = Event.record(attempt.ticket, "ticket.one", {}), Event.record(attempt.ticket, "ticket.two", {})
    Event.record(other, "ticket.elsewhere", {})
    changelist = alice_client.get(reverse("admin:coordination_event_changelist"),
                                  {"ticket__id__exact": attempt.ticket_id}).content.decode()
    events = changelist.split('id="result_list"')[1].split("</table>")[0]
    assert events.index("ticket.two") < events.index("ticket.one") and "ticket.elsewhere" not in events
    assert first.pk < second.pk


def test_a_recorded_resolution_links_to_the_review_that_made_it_in_the_admin(alice_client, attempt):
    recorded = RecordedResolution.objects.create(repository=attempt.ticket.repository, conflict_key="k" * 64,
                                                 resolution=["A = 7"], path="config.txt",
                                                 approved_by=factories.alice(), attempt=attempt)
    listing = alice_client.get(reverse("admin:merges_recordedresolution_changelist")).content.decode()
    assert f'<a href="{url("review", attempt)}">review of merge #{attempt.pk}</a>' in listing
    detail = alice_client.get(reverse("admin:merges_recordedresolution_change", args=[recorded.pk])).content.decode()
    assert "A = 7</pre>" in detail
