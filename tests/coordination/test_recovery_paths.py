"""The sweep recovers each in-flight state a dead worker leaves, deterministically (the fault campaign in
tests/faults does the same with real processes killed at random moments)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.models import Task, Ticket
from coordination.running import execution, workspace
from coordination.scheduling import landing, publishing, scheduler
from merges.engine.git import Git
from merges.models import MergeAttempt
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerDied(BaseException):
    """Stands in for SIGKILL: nothing below catches it, as nothing runs after a kill."""


def _finished_task(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")}])
    scheduler.advance(ticket.pk)
    task = Task.objects.get(ticket=ticket)
    Task.objects.filter(pk=task.pk).update(status="ready")
    execution.run_task(task.pk)
    task.refresh_from_db()
    assert task.status == "succeeded" and not task.landed
    return ticket, task, recorder


def _expire_leases(ticket: Ticket) -> None:
    past = timezone.now() - timedelta(hours=1)
    Ticket.objects.filter(pk=ticket.pk).update(merge_lock_owner="", merge_lock_expires_at=None)
    MergeAttempt.objects.filter(ticket=ticket).update(started_at=past)


def test_a_merger_that_died_after_the_ref_moved_is_completed_not_merged_again(tmp_path, monkeypatch):
    ticket, task, recorder = _finished_task(tmp_path)
    moved = Git.update_refs

    def move_then_die(self, moves, message="dagmerge"):
        moved(self, moves, message)
        if any(ref == ticket.ref for ref, _, _ in moves):
            raise WorkerDied

    monkeypatch.setattr(Git, "update_refs", move_then_die)
    with pytest.raises(WorkerDied):
        landing.land_task(task.pk)
    monkeypatch.undo()
    attempt = MergeAttempt.objects.get(ticket=ticket)
    assert attempt.status == "running" and attempt.result_sha  # the intent was saved before the ref moved
    _expire_leases(ticket)

    sweeping.sweep()
    assert ("recover_merge", attempt.pk) in recorder.jobs
    landing.recover_merge(attempt.pk)

    attempt.refresh_from_db()
    ticket.refresh_from_db()
    assert attempt.status == "merged" and ticket.head_sha == attempt.result_sha
    assert Task.objects.get(pk=task.pk).landed
    assert MergeAttempt.objects.filter(ticket=ticket).count() == 1  # not merged twice


def test_a_merger_that_died_before_the_ref_moved_is_abandoned_and_merged_again(tmp_path, monkeypatch):
    ticket, task, recorder = _finished_task(tmp_path)
    _land_dying_before_the_ref_moves(task, monkeypatch)
    first = MergeAttempt.objects.get(ticket=ticket)

    landing.recover_merge(first.pk)

    first.refresh_from_db()
    assert first.status == "failed" and "abandoned" in first.error
    assert ("land_task", task.pk) in recorder.jobs
    landing.land_task(task.pk)
    ticket.refresh_from_db()
    assert Task.objects.get(pk=task.pk).landed and ticket.status == "done"
    assert workspace.clone_git(ticket.repository_id).rev_parse(ticket.ref) == ticket.head_sha


def test_a_task_whose_worker_keeps_dying_fails_after_max_attempts(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    ticket = submit(source_repo(tmp_path), [{"key": "A", "command": "true", "max_attempts": 2}])
    task = Task.objects.get(ticket=ticket)
    expired = timezone.now() - timedelta(seconds=1)
    Task.objects.filter(pk=task.pk).update(status="running", attempts=1, lease_owner="dead",
                                           lease_expires_at=expired)
    sweeping.sweep()
    assert Task.objects.get(pk=task.pk).status == "ready"
    Task.objects.filter(pk=task.pk).update(status="running", attempts=2, lease_owner="dead again",
                                           lease_expires_at=expired)
    sweeping.sweep()
    task.refresh_from_db()
    assert task.status == "failed" and task.error == "worker lost 2 times (max_attempts 2)"


def test_a_failed_publish_is_retried_with_back_off_until_the_source_shows_the_head(tmp_path):
    ticket, task, recorder = _finished_task(tmp_path)
    source = ticket.repository.url_or_path
    ticket.repository.url_or_path = str(tmp_path / "gone")
    ticket.repository.save()
    landing.land_task(task.pk)
    ticket.refresh_from_db()
    assert ticket.published_sha != ticket.head_sha and ticket.publish_failures == 1
    assert ticket.publish_retry_at > timezone.now()

    ticket.repository.url_or_path = source
    ticket.repository.save()
    Ticket.objects.filter(pk=ticket.pk).update(publish_retry_at=timezone.now() - timedelta(seconds=1))
    sweeping.sweep()
    assert ("publish", ticket.pk) in recorder.jobs
    publishing.publish_ticket(ticket.pk)
    ticket.refresh_from_db()
    assert ticket.published_sha == ticket.head_sha and ticket.publish_failures == 0
    assert Git(source).rev_parse(ticket.ref) == ticket.head_sha


def test_the_sweep_sends_a_lapsed_merges_recovery_once_per_lapse(tmp_path, monkeypatch, settings):
    ticket, task, recorder = _finished_task(tmp_path)
    _land_dying_before_the_ref_moves(task, monkeypatch)
    attempt = MergeAttempt.objects.get(ticket=ticket)
    recorder.jobs.clear()

    def sent() -> int:
        sweeping.sweep()
        count = recorder.jobs.count(("recover_merge", attempt.pk))
        recorder.jobs.clear()
        return count

    assert sent() == 1
    assert sent() == 0  # still queued behind other work: not sent again by every sweep
    now = timezone.now()  # its recovery took the merge lease and died in turn: a new lapse
    MergeAttempt.objects.filter(pk=attempt.pk).update(recovery_sent_at=now - timedelta(seconds=10))
    Ticket.objects.filter(pk=ticket.pk).update(merge_lock_owner="dead recovery",
                                               merge_lock_expires_at=now - timedelta(seconds=5))
    assert sent() == 1
    assert sent() == 0
    MergeAttempt.objects.filter(pk=attempt.pk).update(  # the message itself was lost: sent after the delay
        recovery_sent_at=timezone.now() - timedelta(seconds=settings.DAGMERGE_RESEND_SECONDS + 1))
    assert sent() == 1


def _land_dying_before_the_ref_moves(task: Task, monkeypatch) -> None:
    """The merger dies as it would move the ticket ref; its lease then lapses."""
    def die(self, moves, message="dagmerge"):
        raise WorkerDied

    monkeypatch.setattr(Git, "update_refs", die)
    with pytest.raises(WorkerDied):
        landing.land_task(task.pk)
    monkeypatch.undo()
    _expire_leases(task.ticket)
