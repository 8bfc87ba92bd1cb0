"""The review page's doors with Django's test client: rendering, decisions, rights, the server's gate.

The merges themselves (approve, retry, drop) run on real git in tests/browser; here the attempt is
written directly, as a conflict would leave it.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from merges import review
from merges.engine.conflicts import parse_hunks
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from tests import factories

pytestmark = pytest.mark.django_db

BASE = "".join(f"line {i}\n" for i in range(1, 31))


def conflicted(base: str, changes: dict[int, tuple[str, str]]) -> str:
    """git's merged text in diff3 style: each changed line a hunk, ours / base / theirs."""
    out = []
    for number, line in enumerate(base.splitlines(), start=1):
        if number in changes:
            ours, theirs = changes[number]
            out += ["<<<<<<< ours", ours, "||||||| base", line, "=======", theirs, ">>>>>>> theirs"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.fixture
def attempt() -> MergeAttempt:
    ticket = factories.make_ticket("Review page", status="awaiting_review")
    b = factories.make_task(ticket, "B", status="succeeded", title="Short timeouts",
                            instructions="Make every timeout 5 seconds.")
    c = factories.make_task(ticket, "C", status="succeeded", title="Long timeouts",
                            instructions="Make every timeout 9 seconds.")
    d = factories.make_task(ticket, "D", [b, c], title="Integrate")
    d.join.status = "awaiting_review"
    d.join.save()
    attempt = MergeAttempt.objects.create(
        ticket=ticket, join=d.join, target_ref=ticket.ref, base_sha=factories.SHA, status="conflicted",
        incoming=[{"name": n, "branch": n.lower(), "sha": factories.SHA} for n in "BC"],
        merge_order=["B"], pending_sources=["C"], conflict_tree="f" * 40, partial_sha=factories.SHA,
        review_reason="no ANTHROPIC_API_KEY configured: the conflict goes to a person")
    merged = conflicted(BASE, {5: ("A = 5", "A = 9"), 15: ("B = 5", "B = 9"), 25: ("C = 5", "C = 9")})
    merged = merged.replace("line 1\n", "line 1 (clean change)\n", 1)
    hunks = [h.as_dict() for h in parse_hunks(merged)]
    ConflictFile.objects.create(
        attempt=attempt, path="config.txt", kind="content", source="C", base_text=BASE, merged_text=merged,
        ours_text=BASE, theirs_text=BASE, hunks=hunks, hunk_count=3, base_oid="1" * 40, ours_oid="2" * 40,
        theirs_oid="3" * 40,
        resolutions=[{"index": 0, "tier": "resolver", "resolver": "union", "rationale": "",
                      "lines": ["A = 5", "A = 9"]},
                     {"index": 1, "tier": "", "resolver": "", "rationale": "", "lines": None},
                     {"index": 2, "tier": "", "resolver": "", "rationale": "", "lines": None}])
    ConflictFile.objects.create(
        attempt=attempt, path="logo.png", kind="binary", source="C", base_oid="4" * 40, ours_oid="5" * 40,
        theirs_oid="6" * 40, hunk_count=1)
    ConflictFile.objects.create(
        attempt=attempt, path="old.txt", kind="modify/delete", source="C", base_oid="7" * 40, ours_oid="8" * 40,
        theirs_oid="", base_text="old\n", ours_text="old, changed\n", hunk_count=1)
    return attempt


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
    assert "decided by person: alice" in html and '<span class="choice" title="what this hunk holds">theirs</span>' in html
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
