"""Row locks that serialize state moves neither invert nor wait on a row being inserted: a ticket's row is
taken before its join's, and with ``FOR NO KEY UPDATE``, which the foreign-key check of an insert referring
to the row (an event, a merge attempt) does not wait for. Both deadlocks were seen in CI on PostgreSQL: a
join's convergence against a recovery recording its merge, and against the merger inserting its attempt.
A task's outcome is recorded under its ticket's row, as ``advance`` needs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction

from coordination.domain import dispatch
from coordination.models import Event, Join, Task, Ticket
from coordination.running import execution
from coordination.running.execution import Outcome
from coordination.scheduling import landing, scheduler
from merges.models import MergeAttempt
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL's")]


class OnItsOwnConnection(threading.Thread):
    """``step`` on a connection of its own, its backend known so the test can see it wait for a lock."""

    def __init__(self, step: Callable[[], object]):
        super().__init__()
        self.step, self.pid, self.failures = step, None, []

    def run(self) -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.step()
        except Exception as exc:  # noqa: BLE001 -- reported to the test's thread
            self.failures.append(exc)
        finally:
            connections.close_all()

    def waiting_on_a_lock(self) -> bool:
        if self.pid is None:
            return False
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [self.pid])
            row = cursor.fetchone()
        return bool(row) and row[0] == "Lock"


def _converging(join: Join) -> OnItsOwnConnection:
    """The join is not synthesizing: the convergence looks and lets go."""
    return OnItsOwnConnection(lambda: landing.converge_join(join.pk))


def _until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def _join(tmp_path) -> Join:
    dispatch.use(RecordingDispatcher())
    ticket = submit(source_repo(tmp_path), [{"key": "B", "command": sh("true")}, {"key": "C", "command": sh("true")},
                                            {"key": "D", "depends_on": ["B", "C"], "command": sh("true")}])
    return Join.objects.get(ticket=ticket)


def test_a_join_convergence_waits_for_the_ticket_before_taking_the_join(tmp_path):
    join = _join(tmp_path)
    with transaction.atomic():  # the order record_merge_outcome takes them in
        Ticket.objects.select_for_update(no_key=True).get(pk=join.ticket_id)
        converging = _converging(join)
        converging.start()
        assert _until(converging.waiting_on_a_lock)
        Join.objects.select_for_update(no_key=True).get(pk=join.pk)  # a deadlock, if the convergence held the join
    converging.join(timeout=10)
    assert not converging.is_alive() and converging.failures == []
    assert Join.objects.get(pk=join.pk).status == "waiting"


def test_a_join_convergence_does_not_wait_for_a_merge_attempt_being_inserted(tmp_path):
    join = _join(tmp_path)
    with transaction.atomic():  # a merger inserting its attempt, whose commit checks the join's and the ticket's keys
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # checked at once: the test looks while they are held
        MergeAttempt.objects.create(ticket_id=join.ticket_id, join=join, target_ref="refs/heads/x", base_sha="0" * 40)
        converging = _converging(join)
        converging.start()
        converging.join(timeout=10)
        assert not converging.is_alive(), "the convergence waited for the insert"
        Event.record(join.ticket, "merge.started", {})  # its next insert: a deadlock, had it waited
    assert converging.failures == []


def test_a_task_outcome_waits_for_an_advance_under_way(tmp_path):
    """``advance`` reads the ticket's tasks in several statements under the ticket's row; a task finishing
    between two of them made it settle the ticket as failed while a join still had its sources to merge."""
    dispatch.use(RecordingDispatcher())
    ticket = submit(source_repo(tmp_path), [{"key": "A", "command": sh("true")}])
    scheduler.advance(ticket.pk)
    task = execution.claim(Task.objects.get(ticket=ticket).pk, "worker-1")
    assert task is not None
    with transaction.atomic():  # an advance under way
        Ticket.objects.select_for_update(no_key=True).get(pk=ticket.pk)
        finishing = OnItsOwnConnection(lambda: execution.finish(task.pk, "worker-1", Outcome("succeeded")))
        finishing.start()
        assert _until(finishing.waiting_on_a_lock)
        assert Task.objects.get(pk=task.pk).status == "running"
    finishing.join(timeout=10)
    assert not finishing.is_alive() and finishing.failures == []
    assert Task.objects.get(pk=task.pk).status == "succeeded"
