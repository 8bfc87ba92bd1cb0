"""A claim PostgreSQL rolled back to break a deadlock is tried again, not left for the sweep."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError

from coordination.domain import dispatch
from coordination.models import Event, Task
from coordination.running import execution
from coordination.scheduling import scheduler
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _ready_task(tmp_path) -> Task:
    dispatch.use(RecordingDispatcher())
    ticket = submit(source_repo(tmp_path), [{"key": "A", "command": sh("echo a > a.txt")}])
    scheduler.advance(ticket.pk)
    task = Task.objects.get(ticket=ticket)
    assert task.status == "ready"
    return task


def _failing_first(monkeypatch, error: OperationalError) -> list[str]:
    """Writing the claim's events fails once, as the claim's commit would, inside the claim's transaction."""
    record_all, calls = Event.record_all, []

    def record_or_fail(ticket, events):
        calls.extend(kind for kind, _ in events)
        if calls[0] == "task.claimed" and calls.count("task.claimed") == 1:
            raise error
        return record_all(ticket, events)

    monkeypatch.setattr(Event, "record_all", record_or_fail)
    return calls


def _deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


def test_a_claim_rolled_back_by_a_deadlock_is_tried_again_and_taken_once(tmp_path, monkeypatch):
    task = _ready_task(tmp_path)
    calls = _failing_first(monkeypatch, _deadlock())
    claimed = execution.claim(task.pk, "worker-1")
    assert claimed is not None and calls.count("task.claimed") == 2
    task.refresh_from_db()
    assert task.status == "running" and task.lease_owner == "worker-1" and task.attempts == 1
    assert Event.objects.filter(ticket=task.ticket, kind="task.claimed").count() == 1  # the first try left nothing


def test_other_database_errors_in_a_claim_are_not_retried(tmp_path, monkeypatch):
    task = _ready_task(tmp_path)
    calls = _failing_first(monkeypatch, OperationalError("database is locked"))
    with pytest.raises(OperationalError):
        execution.claim(task.pk, "worker-1")
    assert calls == ["task.claimed", "task.running"]
    task.refresh_from_db()
    assert task.status == "ready" and task.lease_owner == ""  # rolled back: the sweep resends it
