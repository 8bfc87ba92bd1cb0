"""Two reviewers on one merge: each decision is an event that the other's page turns into the file it
changed, and a decision made on what the other has changed since is refused, with both shown.

The browser side (the swap, the kept edit) is in tests/browser/test_review_together.py.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from coordination.models import Event
from coordination.review.live import review_live_view
from coordination.web.liveview import LiveView
from coordination.web.progress import Narrator
from merges import review
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def attempt() -> MergeAttempt:
    return factories.conflicted_attempt()


@pytest.fixture
def dave_client() -> Client:
    client = Client()
    client.force_login(factories.dave())
    return client


def config(attempt: MergeAttempt) -> ConflictFile:
    return ConflictFile.objects.get(attempt=attempt, path="config.txt")


def decide(client: Client, attempt: MergeAttempt, index: int, choice: str, seen: str | None, text: str = ""):
    data = {"choice": choice, "text": text, **({"seen": seen} if seen is not None else {})}
    return client.post(reverse("coordination:decide_hunk", args=[attempt.pk, config(attempt).pk, index]), data,
                       HTTP_HX_REQUEST="true")


def test_a_decision_is_an_event_and_the_other_page_gets_that_file_the_summary_and_the_history(
        alice_client, attempt):
    dave_page = review_live_view(attempt.ticket_id, attempt.pk, factories.dave())
    dave_page.connect(None)
    seen = review.version(config(attempt), 1)

    assert decide(alice_client, attempt, 1, "theirs", seen).status_code == 200

    event = Event.objects.get(ticket=attempt.ticket, kind="review.decided")
    assert event.payload == {"attempt_id": attempt.pk, "file_id": config(attempt).pk, "path": "config.txt",
                             "by": "alice", "action": "decide", "hunk": 1, "choice": "theirs"}
    pushed = dave_page.update({event.pk})
    section = re.search(rf'<section id="file-{config(attempt).pk}"[^>]*>', pushed).group(0)
    assert 'hx-swap-oob="true"' in section
    assert f'data-version="{review.version(config(attempt))}"' in section
    assert 'data-last-change="alice decided hunk 2: theirs"' in section
    summary = re.search(r'<section id="review-summary"[^>]*>', pushed).group(0)
    assert 'data-remaining="3"' in summary  # config.txt's last hunk and the two cards
    assert 'id="review-history"' in pushed
    # Only what changed: not the rounds (they hold what dave may be editing), not the ticket's header.
    assert 'id="review-rounds"' not in pushed and 'id="ticket-header"' not in pushed
    assert f'id="file-{ConflictFile.objects.get(attempt=attempt, path="logo.png").pk}"' not in pushed


def test_a_decision_on_what_another_reviewer_changed_since_is_refused_and_shows_both(
        alice_client, dave_client, attempt):
    seen_by_dave = review.version(config(attempt), 2)
    assert decide(alice_client, attempt, 2, "ours", seen_by_dave).status_code == 200

    answer = decide(dave_client, attempt, 2, "edit", seen_by_dave, text="C = 7")

    assert answer.status_code == 409
    html = answer.content.decode()
    assert re.search(r"hunk 3 of config.txt was decided by alice at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d after this page "
                     r"showed it: nothing was saved", html)
    assert "your text is kept in the editor below" in html
    assert re.search(r'<details class="edit" open>.*?<textarea[^>]*>C = 7</textarea>', html, re.S)
    assert review.hunk_decisions(config(attempt))[2]["lines"] == ["C = 5"]  # alice's, untouched
    assert not ReviewAction.objects.filter(user__username="dave").exists()
    assert not Event.objects.filter(kind="review.decided", payload__by="dave").exists()

    # Having seen alice's decision (the section answered carries its version), dave may replace it.
    fresh = review.version(config(attempt), 2)
    assert f'name="seen" value="{fresh}"' in html
    assert decide(dave_client, attempt, 2, "edit", fresh, text="C = 7").status_code == 200
    assert review.hunk_decisions(config(attempt))[2]["lines"] == ["C = 7"]


def test_another_hunk_of_the_same_file_is_not_a_conflict(alice_client, dave_client, attempt):
    seen_by_dave = review.version(config(attempt), 2)
    assert decide(alice_client, attempt, 1, "ours", review.version(config(attempt), 1)).status_code == 200
    assert decide(dave_client, attempt, 2, "theirs", seen_by_dave).status_code == 200
    assert [d["lines"] for d in review.hunk_decisions(config(attempt))[1:]] == [["B = 5"], ["C = 9"]]


def test_a_whole_file_save_on_an_old_view_is_refused_and_keeps_the_text(alice_client, dave_client, attempt):
    conflict = config(attempt)
    seen_by_dave = review.version(conflict)
    assert decide(alice_client, attempt, 1, "theirs", review.version(conflict, 1)).status_code == 200

    answer = dave_client.post(reverse("coordination:decide_file", args=[attempt.pk, conflict.pk]),
                              {"choice": "edit", "text": "dave's whole file\n", "seen": seen_by_dave},
                              HTTP_HX_REQUEST="true")

    assert answer.status_code == 409
    html = answer.content.decode()
    assert "config.txt was decided by alice" in html and "your text is kept in the result below" in html
    assert re.search(r'<textarea name="text" class="code result-text"[^>]*>dave&#x27;s whole file\n</textarea>', html)
    assert config(attempt).result_text is None


def test_undo_and_the_cli_line_and_the_ticket_page_stay_light(alice_client, attempt):
    conflict = config(attempt)
    decide(alice_client, attempt, 1, "theirs", None)  # a client without a version is not checked
    alice_client.post(reverse("coordination:undo_hunk", args=[attempt.pk, conflict.pk, 1]),
                      {"seen": review.version(config(attempt), 1)}, HTTP_HX_REQUEST="true")
    events = list(Event.objects.filter(kind="review.decided").order_by("id"))
    assert [e.payload["action"] for e in events] == ["decide", "undo"]
    lines = [Narrator(attempt.ticket_id)._text(e.kind, e.payload) for e in events]
    assert lines == [f"merge #{attempt.pk}: alice decided hunk 2 of config.txt: theirs",
                     f"merge #{attempt.pk}: alice undid hunk 2 of config.txt"]
    # The ticket's page has nothing to redraw for a hunk but the navigation's inbox count.
    ticket_page = LiveView(attempt.ticket_id)
    assert ticket_page._affected([(e.kind, e.payload) for e in events]) == {("nav",)}
