"""The worker that ran a task lands it and carries on with what that released, without a queue in between:
the task it goes on with is claimed in the transaction that released it (no job is sent after it); the rest
of the released work is handed over, and a second worker (or a redelivered message) finds taken what is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.models import Event, Join, Task, Ticket
from coordination.running import execution
from coordination.scheduling import landing, relay, scheduler
from merges.engine.git import Git
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _chain(tmp_path, length: int):
    repo = source_repo(tmp_path)
    keys = [f"c{i}" for i in range(length)]
    ticket = submit(repo, [{"key": key, "command": sh(f"echo {key} > {key}.txt"), "depends_on": keys[i - 1:i]}
                           for i, key in enumerate(keys)])
    scheduler.advance(ticket.pk)
    return repo, ticket, {t.key: t for t in Task.objects.filter(ticket=ticket)}


def test_one_job_runs_lands_and_releases_a_whole_chain_claiming_each_next_task_as_it_releases_it(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    repo, ticket, tasks = _chain(tmp_path, 3)
    recorder.jobs.clear()  # c0's own job: the test runs it

    relay.run_task(tasks["c0"].pk)

    ticket.refresh_from_db()
    assert ticket.status == "done"
    rows = {t.key: t for t in Task.objects.filter(ticket=ticket)}
    assert all(t.status == "succeeded" and t.landed and t.attempts == 1 for t in rows.values())
    head = Git(repo.path).rev_parse(ticket.ref)
    assert head == ticket.head_sha  # the last landing pushed; those with a next task handed the push over
    assert recorder.jobs.count(("publish", ticket.pk)) == 2
    for key in ("c0", "c1", "c2"):
        assert Git(repo.path).text("show", f"{head}:{key}.txt") == key
    assert rows["c2"].start_sha != rows["c1"].start_sha != rows["c0"].start_sha  # each on its parent's landing
    assert [job for job, _ in recorder.jobs if job == "run_task"] == []  # each claimed as it was released
    ready_to_claimed = Event.objects.filter(ticket=ticket, kind__in=("task.ready", "task.claimed")).order_by("pk")
    assert [(e.kind, e.payload["task"]) for e in ready_to_claimed] == [
        ("task.ready", "c0"), ("task.claimed", "c0"), ("task.ready", "c1"), ("task.claimed", "c1"),
        ("task.ready", "c2"), ("task.claimed", "c2")]
    for key in ("c1", "c2"):  # a message sent for one anyway (the sweep's resend): nothing runs twice
        relay.run_task(tasks[key].pk)
    assert all(t.attempts == 1 for t in Task.objects.filter(ticket=ticket))


def test_a_landing_that_releases_two_tasks_claims_one_and_hands_the_other_out(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                           {"key": "B", "command": sh("echo b > b.txt"), "depends_on": ["A"]},
                           {"key": "C", "command": sh("echo c > c.txt"), "depends_on": ["A"]}])
    scheduler.advance(ticket.pk)
    tasks = {t.key: t for t in Task.objects.filter(ticket=ticket)}
    assert execution.run_task(tasks["A"].pk)
    recorder.jobs.clear()

    claimed = relay.land_and_claim_next(tasks["A"].pk)

    assert claimed is not None and claimed.task.pk == tasks["B"].pk  # the first, by id
    rows = {t.key: t for t in Task.objects.filter(ticket=ticket)}
    assert rows["B"].status == "running" and rows["B"].lease_owner == claimed.lease.owner
    fields = ("status", "lease_owner", "lease_expires_at", "start_sha", "started_at", "attempts", "error", "log")
    assert {f: getattr(claimed.task, f) for f in fields} == {f: getattr(rows["B"], f) for f in fields}
    assert rows["B"].start_sha == Ticket.objects.get(pk=ticket.pk).head_sha != rows["A"].start_sha  # A landed
    assert rows["C"].status == "ready"
    assert [(job, pk) for job, pk in recorder.jobs if job == "run_task"] == [("run_task", tasks["C"].pk)]


def test_the_task_that_completes_a_join_converges_it_and_runs_the_continuation(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                           {"key": "B", "command": sh("echo b > b.txt")},
                           {"key": "C", "command": sh("cat a.txt b.txt > c.txt"), "depends_on": ["A", "B"]}])
    scheduler.advance(ticket.pk)
    tasks = {t.key: t for t in Task.objects.filter(ticket=ticket)}
    join = Join.objects.get(continuation=tasks["C"])

    relay.run_task(tasks["A"].pk)  # a source: nothing to land, the join still waits for B
    assert Task.objects.get(pk=tasks["C"].pk).status == "pending"

    relay.run_task(tasks["B"].pk)

    join.refresh_from_db()
    ticket.refresh_from_db()
    assert join.status == "merged" and ticket.status == "done"
    assert Git(repo.path).text("show", f"{ticket.head_sha}:c.txt") == "a\nb"
    assert ("converge_join", join.pk) in recorder.jobs  # handed out, and taken by the relay first
    assert ("run_task", tasks["C"].pk) not in recorder.jobs  # claimed as the join's merge released it
    landing.converge_join(join.pk)  # the handed-over job, delivered late: the join is taken
    assert Join.objects.get(pk=join.pk).merge_attempts.count() == 1


class ClaimingElsewhere(RecordingDispatcher):
    """A second worker that claims every released task the moment its job is handed over."""

    def submit(self, job, object_id: int) -> None:
        super().submit(job, object_id)
        if job.value == "run_task":
            transaction.on_commit(lambda: execution.claim(object_id, "other-worker"))


def test_a_task_another_delivery_released_and_another_worker_claimed_first_is_left_to_it(tmp_path):
    dispatch.use(RecordingDispatcher())
    _, _, tasks = _chain(tmp_path, 2)
    assert execution.run_task(tasks["c0"].pk)
    dispatch.use(ClaimingElsewhere())
    landing.land_task(tasks["c0"].pk)  # a redelivered landing got there first: c1 handed out, claimed elsewhere

    assert relay.land_and_claim_next(tasks["c0"].pk) is None

    c1 = Task.objects.get(pk=tasks["c1"].pk)
    assert Task.objects.get(pk=tasks["c0"].pk).landed
    assert c1.status == "running" and c1.lease_owner == "other-worker" and c1.attempts == 1


def test_a_task_another_delivery_released_is_claimed_when_nobody_has_it_yet(tmp_path):
    dispatch.use(RecordingDispatcher())
    _, _, tasks = _chain(tmp_path, 2)
    assert execution.run_task(tasks["c0"].pk)
    landing.land_task(tasks["c0"].pk)  # landed by another delivery; c1's job not picked up yet

    claimed = relay.land_and_claim_next(tasks["c0"].pk)

    assert claimed is not None and claimed.task.pk == tasks["c1"].pk
    assert Task.objects.get(pk=tasks["c1"].pk).lease_owner == claimed.lease.owner


def test_a_chain_longer_than_the_relay_limit_goes_on_through_the_queue(tmp_path, monkeypatch):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    monkeypatch.setattr(relay, "RELAY_LIMIT", 2)
    _, ticket, tasks = _chain(tmp_path, 3)

    relay.run_task(tasks["c0"].pk)

    rows = {t.key: t.status for t in Task.objects.filter(ticket=ticket)}
    assert rows == {"c0": "succeeded", "c1": "succeeded", "c2": "ready"}
    assert ("run_task", tasks["c2"].pk) in recorder.jobs  # the last hop claims nothing: c2 was handed out
    relay.run_task(tasks["c2"].pk)
    ticket.refresh_from_db()
    assert ticket.status == "done"


class WorkerDied(BaseException):
    """Stands in for SIGKILL: nothing below catches it, as nothing runs after a kill."""


def _dies(*_args, **_kwargs):
    raise WorkerDied


def _an_hour_ago(ticket) -> None:
    """Everything of the ticket was queued long ago: the sweep sends lost jobs again, and leases lapsed."""
    past = timezone.now() - timedelta(hours=1)
    Task.objects.filter(ticket=ticket).update(updated_at=past)
    Task.objects.filter(ticket=ticket, lease_expires_at__isnull=False).update(lease_expires_at=past)


def test_a_worker_dead_between_recording_a_task_and_landing_it_leaves_the_landing_to_the_sweep(tmp_path, monkeypatch):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    _, ticket, tasks = _chain(tmp_path, 2)
    monkeypatch.setattr(relay, "task_finished", _dies)
    with pytest.raises(WorkerDied):
        relay.run_task(tasks["c0"].pk)
    monkeypatch.undo()
    assert Task.objects.get(pk=tasks["c0"].pk).status == "succeeded"
    recorder.jobs.clear()

    _an_hour_ago(ticket)
    sweeping.sweep()

    assert recorder.jobs == [("land_task", tasks["c0"].pk)]
    landing.land_task(tasks["c0"].pk)
    relay.run_task(tasks["c1"].pk)
    ticket.refresh_from_db()
    assert ticket.status == "done"
    assert [t.attempts for t in Task.objects.filter(ticket=ticket).order_by("key")] == [1, 1]


def test_a_worker_dead_after_claiming_the_released_task_leaves_it_to_the_sweep_once_the_lease_lapses(tmp_path):
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    _, ticket, tasks = _chain(tmp_path, 2)
    assert execution.run_task(tasks["c0"].pk)
    assert relay.land_and_claim_next(tasks["c0"].pk) is not None  # c1 claimed; the worker dies before running it
    c1 = Task.objects.get(pk=tasks["c1"].pk)
    assert Task.objects.get(pk=tasks["c0"].pk).landed and c1.status == "running" and c1.lease_owner
    recorder.jobs.clear()

    _an_hour_ago(ticket)
    assert sweeping.sweep()["requeued"] == 1

    assert ("run_task", c1.pk) in recorder.jobs
    relay.run_task(c1.pk)
    ticket.refresh_from_db()
    c1.refresh_from_db()
    assert ticket.status == "done" and c1.status == "succeeded" and c1.attempts == 2
