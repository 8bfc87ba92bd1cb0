from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from coordination import dispatch, execution, sweeping
from coordination.models import Task
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _ready_task(tmp_path):
    dispatcher = RecordingDispatcher()
    dispatch.use(dispatcher)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt"), "owned_files": ["a.txt"]}])
    from coordination import flow

    flow.advance(ticket.pk)
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
