"""A finished run's result survives the database going away while it is recorded (a PostgreSQL restart, a
locked SQLite file): the task ends succeeded with its commit, never failed, and is not run a second time.

The outage is made at the wire, for every connection of the process at once (the run's, its heartbeat's,
its log streamer's): every statement is refused with the OperationalError a restarting server gives, until
the outage ends. tests/faults/test_servers.py restarts a real PostgreSQL at that moment, with a real worker.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.db.backends import utils
from django.utils import timezone

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.models import Task
from coordination.running import execution, workspace
from coordination.scheduling import landing, scheduler
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


class Outage:
    """While on, every SQL statement of this process is refused, as by a database that is restarting."""

    def __init__(self):
        self._until = 0.0
        self.refused = 0
        self._lock = threading.Lock()

    def begin(self, seconds: float) -> None:
        self._until = time.monotonic() + seconds

    def end(self) -> None:
        self._until = 0.0

    def check(self) -> None:
        if time.monotonic() < self._until:
            with self._lock:
                self.refused += 1
            raise OperationalError("server closed the connection unexpectedly (simulated restart)")


@pytest.fixture
def outage(monkeypatch) -> Outage:
    outage = Outage()
    for name in ("execute", "executemany"):
        real = getattr(utils.CursorWrapper, name)

        def refusing(self, *args, real=real, **kwargs):
            outage.check()
            return real(self, *args, **kwargs)

        monkeypatch.setattr(utils.CursorWrapper, name, refusing)
    return outage


@pytest.fixture
def ready_task(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    ticket = submit(source_repo(tmp_path), [{"key": "A", "command": sh("echo a > a.txt")}])
    scheduler.advance(ticket.pk)
    task = Task.objects.get(ticket=ticket)
    assert task.status == "ready"
    recorder.jobs.clear()  # its run_task: the test runs it
    return task, recorder


def _outage_when(monkeypatch, outage: Outage, function: str, seconds: float) -> None:
    """The outage begins the moment ``execution.<function>`` is first called."""
    real = getattr(execution, function)

    def starting_the_outage(*args, **kwargs):
        if not outage.refused:
            outage.begin(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(execution, function, starting_the_outage)


def test_a_database_outage_while_the_result_is_recorded_neither_fails_nor_reruns_the_task(
        ready_task, outage, monkeypatch, settings):
    task, recorder = ready_task
    settings.DAGMERGE_LEASE_SECONDS = 10  # the outage (2 s) is well inside the lease
    _outage_when(monkeypatch, outage, "finish", 2.0)

    assert execution.run_task(task.pk), "the run did not say it recorded the outcome"

    assert outage.refused, "the outage did not hit the recording"
    task.refresh_from_db()
    assert task.status == "succeeded" and task.error == "" and task.attempts == 1
    assert task.lease_owner == "" and task.lease_expires_at is None
    clone = workspace.clone_git(task.ticket.repository_id)
    assert clone.rev_parse(task.ref) == task.head_sha
    assert clone.text("show", f"{task.head_sha}:a.txt") == "a"
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweeping.sweep()["requeued"] == 0 and ("run_task", task.pk) not in recorder.jobs

    landing.task_finished(task.pk)  # what its relay does next: the ticket ends done with the task's commit
    ticket = task.ticket
    ticket.refresh_from_db()
    assert ticket.status == "done" and clone.is_ancestor(task.head_sha, ticket.head_sha)


def test_an_outage_longer_than_the_lease_drops_the_result_and_the_sweep_runs_the_task_again(
        ready_task, outage, monkeypatch, settings):
    task, _ = ready_task
    settings.DAGMERGE_LEASE_SECONDS = 3  # the heartbeat gives the lease up 2.5 s after its last renewal
    _outage_when(monkeypatch, outage, "finish", 6.0)

    recorded = execution.run_task(task.pk)  # returns once the heartbeat gave the lease up, the database still away
    outage.end()

    task.refresh_from_db()  # nothing written once the lease could have lapsed: the run left the task as it was
    assert task.status == "running" and task.head_sha == "" and task.error == ""
    assert not recorded
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweeping.sweep()["requeued"] == 1
    execution.run_task(task.pk)
    task.refresh_from_db()
    assert task.status == "succeeded" and task.attempts == 2


def test_a_database_error_during_the_run_is_not_the_tasks_failure(ready_task, outage, monkeypatch):
    task, _ = ready_task
    _outage_when(monkeypatch, outage, "task_context", 0.5)  # read before the command starts

    recorded = execution.run_task(task.pk)
    outage.end()

    task.refresh_from_db()
    assert outage.refused and task.status == "running" and task.error == ""
    assert not recorded
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert sweeping.sweep()["requeued"] == 1


def test_recording_again_after_a_commit_whose_answer_was_lost_is_recognised(ready_task):
    task, _ = ready_task
    execution.claim(task.pk, "this-run")
    outcome = execution.Outcome("succeeded", head_sha="f" * 40, result={"worker": "this-run"})
    assert execution.finish(task.pk, "this-run", outcome)

    assert execution.finish(task.pk, "this-run", outcome)  # the same run tries again: already recorded
    assert not execution.finish(task.pk, "another-run", execution.Outcome("succeeded", result={"worker": "x"}))
