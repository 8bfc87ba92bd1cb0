"""Who settled each hunk, how and when, read the same way everywhere; a reused resolution cites its review.

Real git, real tickets: a reviewer's decisions on one ticket, then the same conflict on another ticket of
the same repository, settled by the ``recorded`` resolver.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from coordination.jobs.driving import drive
from coordination.review import actions as review_actions
from merges import provenance, review
from merges.models import MergeAttempt
from tests.merges.test_review import BASE, _conflicted, _edit
from tests.scenarios import sh, submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="pw")


def test_each_choice_reads_as_what_was_chosen_by_whom_and_when_at_the_hunk_line_in_ours(tmp_path, alice):
    b = _edit(BASE, {10: "B ten", 30: "B thirty", 50: "B fifty"})
    c = _edit(BASE, {10: "C ten", 30: "C thirty", 50: "C fifty"})
    _, _, _, attempt = _conflicted(tmp_path, {"notes.txt": b}, {"notes.txt": c})
    [conflict] = review.current_files(attempt)
    review.decide_hunk(conflict.pk, 0, "ours", alice)
    review.decide_hunk(conflict.pk, 1, "both_theirs_first", alice)
    conflict.refresh_from_db()

    records = provenance.hunk_records(conflict)
    assert [r.line for r in records] == [10, 30, 50]  # where each hunk starts in ours, not in the marked text
    assert [h["start"] for h in conflict.hunks] == [10, 36, 62]  # markers, base and theirs above count there
    assert [r.choice for r in records] == ["ours", "both, theirs first", ""]
    assert [r.decided_by for r in records] == ["person: alice", "person: alice", ""]
    assert records[0].decided_at is not None and records[2].decided_at is None

    review.decide_file(conflict.pk, "edit", alice, text=review.result_text(conflict).replace("<", "#"))
    conflict.refresh_from_db()
    whole = provenance.hunk_records(conflict)
    assert {r.choice for r in whole} == {"edited (whole file)"} and {r.person for r in whole} == {"alice"}


def test_a_resolution_reused_on_another_ticket_cites_the_review_that_made_it(tmp_path, alice):
    b, c = _edit(BASE, {10: "B ten"}), _edit(BASE, {10: "C ten"})
    repo, first_ticket, pool, first = _conflicted(tmp_path, {"notes.txt": b}, {"notes.txt": c})
    [decided] = review.current_files(first)
    review.decide_hunk(decided.pk, 0, "edit", alice, text="B and C ten")
    review_actions.request_approve(first.pk, alice)
    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(first_ticket.pk, pool, timeout=60) == "done"

    # The same clash on line 10, and a new one on line 30: a person is still needed, for line 30 only.
    b2, c2 = _edit(b, {30: "B thirty"}), _edit(c, {30: "C thirty"})
    again = submit(repo, [{"key": "B", "command": sh(f"printf '{b2}' > notes.txt")},
                          {"key": "C", "command": sh(f"printf '{c2}' > notes.txt")},
                          {"key": "D", "depends_on": ["B", "C"], "command": "true"}])
    assert drive(again.pk, pool, timeout=60) == "awaiting_review"
    second = MergeAttempt.objects.get(join__ticket=again)
    [conflict] = review.current_files(second)
    reused, new = provenance.hunk_records(conflict)
    assert reused.decided_by == "resolver: recorded" and reused.choice == "proposal" and not new.decided
    assert reused.recorded == {
        "id": reused.recorded["id"], "attempt_id": first.pk, "ticket_id": first_ticket.pk, "path": "notes.txt",
        "approved_by": "alice", "approved_at": reused.recorded["approved_at"], "anchor": f"hunk-{decided.pk}-0"}
    assert conflict.resolutions[0]["lines"] == ["B and C ten"]
