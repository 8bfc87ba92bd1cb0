from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.models import Task
from coordination.running import execution
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _ready_task(tmp_path):
    dispatcher = RecordingDispatcher()
    dispatch.use(dispatcher)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt"), "owned_files": ["a.txt"]}])
    from coordination.scheduling import scheduler

    scheduler.advance(ticket.pk)
    task = Task.objects.get(ticket=ticket)
    assert task.status == "ready"
    return task, dispatcher


def test_a_redelivered_message_finds_the_live_lease_and_leaves(tmp_path):
    task, _ = _ready_task(tmp_path)
    assert execution.claim(task.pk, "first-worker") is not None
    execution.run_task(task.pk)  # the broker delivers the same message again

    task.refresh_from_db()
    assert task.status == "running" and task.lease_owner == "first-worker" and task.attempts == 1


def test_an_outcome_from_a_run_that_lost_its_lease_is_dropped(tmp_path):
    task, _ = _ready_task(tmp_path)
    execution.claim(task.pk, "first-worker")
    Task.objects.filter(pk=task.pk).update(lease_owner="second-worker")

    recorded = execution.finish(task.pk, "first-worker", execution.Outcome("succeeded", head_sha="f" * 40))

    assert not recorded
    task.refresh_from_db()
    assert task.status == "running" and task.head_sha == ""


def test_sweep_requeues_a_task_whose_worker_died(tmp_path):
    task, dispatcher = _ready_task(tmp_path)
    execution.claim(task.pk, "dead-worker")
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert sweeping.sweep()["requeued"] == 1

    task.refresh_from_db()
    assert task.status == "ready" and task.lease_owner == ""
    assert not task.claims.filter(released_at=None).exists()
    assert ("run_task", task.pk) in dispatcher.jobs
    assert execution.claim(task.pk, "new-worker") is not None


def test_sweep_leaves_a_live_lease_alone(tmp_path):
    task, _ = _ready_task(tmp_path)
    execution.claim(task.pk, "busy-worker")
    assert sweeping.sweep()["requeued"] == 0
    task.refresh_from_db()
    assert task.lease_owner == "busy-worker"


def test_sweep_sends_a_ready_task_again_once_per_resend_delay(tmp_path, settings):
    task, dispatcher = _ready_task(tmp_path)  # its message died with a worker: nothing will run it
    settings.DAGMERGE_RESEND_SECONDS = 30
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(seconds=20))
    assert sweeping.sweep()["redispatched"] == 0

    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(seconds=40))
    dispatcher.jobs.clear()
    sweeping.sweep()
    assert ("run_task", task.pk) in dispatcher.jobs

    dispatcher.jobs.clear()  # the next sweeps (every 30 s by default) wait a whole delay again
    sweeping.sweep()
    assert ("run_task", task.pk) not in dispatcher.jobs


def test_cancelling_a_ticket_stops_a_running_command(tmp_path, settings):
    import time

    from coordination.jobs.driving import drive
    from coordination.scheduling.operations import cancel_ticket
    from tests import factories

    settings.DAGMERGE_LEASE_SECONDS = 1.5  # the heartbeat looks every half second
    pool = ThreadDispatcher(2)
    dispatch.use(pool)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo started; sleep 60")}])
    deadline = time.monotonic() + 30
    while not Task.objects.filter(ticket=ticket, key="A", log__contains="started").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)

    cancelled_at = time.monotonic()
    cancel_ticket(ticket.pk, factories.alice())

    assert pool.wait_idle(timeout=20), "the run did not end"
    assert time.monotonic() - cancelled_at < 10  # not the 60 s of the command
    task = Task.objects.get(ticket=ticket, key="A")
    assert task.status == "cancelled" and task.head_sha == ""
    assert drive(ticket.pk, pool, timeout=5) == "cancelled"
