"""A merger that dies after its compare-and-swap moved the ticket ref but before the outcome was recorded
(the fault campaign's window between the two): the ticket ref is ahead of what the database says. The
sweep must complete that merge, not merge again (which fails on the moved ref and fails the ticket)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import Stuck, drive
from coordination.models import Join, Task, Ticket
from coordination.running import workspace
from coordination.scheduling import landing
from merges.models import MergeAttempt
from tests import factories
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


class MergerDied(BaseException):
    """Not an Exception: nothing on the way out may catch it, as nothing runs after a SIGKILL."""


def _die_before_recording(monkeypatch, when) -> list[int]:
    died: list[int] = []
    record = landing.record_merge_outcome

    def dying(ticket, tasks, join, attempt):
        if not died and when(join, attempt):
            died.append(attempt.pk)
            raise MergerDied(attempt.pk)
        return record(ticket, tasks, join, attempt)

    monkeypatch.setattr(landing, "record_merge_outcome", dying)
    return died


def _lapse(ticket_id: int) -> None:
    """Time passes: the dead merger's lease and its rows are older than a lease."""
    past = timezone.now() - timedelta(minutes=10)
    Ticket.objects.filter(pk=ticket_id).update(merge_lock_owner="dead:1:x", merge_lock_expires_at=past, updated_at=past)
    Join.objects.filter(ticket_id=ticket_id).update(updated_at=past)
    MergeAttempt.objects.filter(ticket_id=ticket_id).update(started_at=past)


def _run_until_the_merger_dies(pool: ThreadDispatcher, ticket_id: int) -> None:
    with pytest.raises(Stuck):
        drive(ticket_id, pool, timeout=60)


def _assert_merged_once(ticket: Ticket, keys: list[str]) -> None:
    git = workspace.clone_git(ticket.repository_id)
    assert git.rev_parse(ticket.ref) == ticket.head_sha
    merges = git.text("log", "--merges", "--format=%s", ticket.ref).splitlines()
    for key in keys:
        assert merges.count(f"Merge ticket/{ticket.pk}-task/{key}") <= 1
    assert not MergeAttempt.objects.filter(ticket=ticket, status="running").exists()


def _join_merged_unrecorded(tmp_path, monkeypatch) -> tuple[ThreadDispatcher, Ticket, int]:
    """A join's merger died between moving the ref and recording it, a lease ago."""
    pool = ThreadDispatcher(2)
    dispatch.use(pool)
    died = _die_before_recording(monkeypatch, lambda join, attempt: join is not None)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "B", "command": sh("echo b > b.txt")},
                           {"key": "C", "command": sh("echo c > c.txt")},
                           {"key": "D", "depends_on": ["B", "C"], "command": sh("test -f b.txt && test -f c.txt")}])
    _run_until_the_merger_dies(pool, ticket.pk)
    [attempt_id] = died
    assert workspace.clone_git(ticket.repository_id).rev_parse(ticket.ref) == \
        MergeAttempt.objects.get(pk=attempt_id).result_sha != Ticket.objects.get(pk=ticket.pk).head_sha
    monkeypatch.undo()
    _lapse(ticket.pk)
    return pool, ticket, attempt_id


def test_a_join_merge_whose_merger_died_after_the_ref_moved_is_completed_by_the_sweep(tmp_path, monkeypatch):
    pool, ticket, attempt_id = _join_merged_unrecorded(tmp_path, monkeypatch)
    sweeping.sweep()

    assert drive(ticket.pk, pool, timeout=60) == "done", Ticket.objects.get(pk=ticket.pk).error
    ticket.refresh_from_db()
    _assert_merged_once(ticket, ["B", "C", "D"])
    assert MergeAttempt.objects.get(pk=attempt_id).status == "merged"


def test_the_sweep_leaves_a_join_merged_unrecorded_to_the_recovery_and_does_not_hand_it_out_again(
        tmp_path, monkeypatch):
    """Handed out again as well (seen in CI), the recovery found the join synthesizing and could not record
    its merge, and the converge job it raced deadlocked with it on PostgreSQL: the ticket stayed merging."""
    pool, ticket, attempt_id = _join_merged_unrecorded(tmp_path, monkeypatch)
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    sweeping.sweep()
    assert [job for job in recorder.jobs if job[0] in ("recover_merge", "converge_join")] == \
        [("recover_merge", attempt_id)]
    assert Join.objects.get(ticket=ticket).status == "merging"

    dispatch.use(pool)
    landing.recover_merge(attempt_id)
    assert drive(ticket.pk, pool, timeout=60) == "done", Ticket.objects.get(pk=ticket.pk).error
    ticket.refresh_from_db()
    _assert_merged_once(ticket, ["B", "C", "D"])
    assert MergeAttempt.objects.get(pk=attempt_id).status == "merged"


def test_an_approve_whose_merger_died_after_the_ref_moved_is_completed_by_the_sweep(tmp_path, monkeypatch):
    from coordination.review.actions import carry_out_review, request_approve
    from merges import review

    pool = ThreadDispatcher(2)
    dispatch.use(pool)
    repo = source_repo(tmp_path, {"shared.txt": "base\n"})
    ticket = submit(repo, [{"key": "B", "command": sh("echo B side > shared.txt")},
                           {"key": "C", "command": sh("echo C side > shared.txt")},
                           {"key": "D", "depends_on": ["B", "C"], "command": sh("true")}])
    assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
    attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
    for conflict in review.current_files(attempt):
        for index in range(len(conflict.hunks)):
            review.decide_hunk(conflict.pk, index, "both_ours_first", factories.alice())
    died = _die_before_recording(monkeypatch, lambda join, merged: merged.pk == attempt.pk)
    dispatch.use(RecordingDispatcher())  # the approve's job is carried out here, where the merger dies
    request_approve(attempt.pk, factories.alice())
    with pytest.raises(MergerDied):
        carry_out_review(attempt.pk)
    assert died == [attempt.pk]

    monkeypatch.undo()
    dispatch.use(pool)
    _lapse(ticket.pk)
    sweeping.sweep()

    assert drive(ticket.pk, pool, timeout=60) == "done", Ticket.objects.get(pk=ticket.pk).error
    ticket.refresh_from_db()
    _assert_merged_once(ticket, ["B", "C", "D"])
    assert Task.objects.get(ticket=ticket, key="D").status == "succeeded"
