"""A worker frozen (SIGSTOP) past its task's lease: another worker runs the task meanwhile; once thawed
(SIGCONT) the first finds its lease gone and drops its outcome. No two runs of the task at once, no result
lost. Two ways, alternately: the worker's process group only (the run's watchdog, in a session of its own,
must stop the run before the sweep hands the task out again), or the worker and everything below it, as a
paused machine would be (the run resumes on SIGCONT and must be stopped at once)."""

from __future__ import annotations

import time

import pytest

from coordination.models import Task
from tests.faults.campaign import (
    Bench,
    Problems,
    campaign_timeout,
    check_ticket,
    db,
    describe,
    effect_task,
    fault_kills,
    in_flight_rows,
    read_runs,
)
from tests.faults.processes import Service, descendants, wait_until
from tests.faults.scenarios import submit_spec
from tests.gitrepo import Repo

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(campaign_timeout())]


def test_a_worker_frozen_past_its_lease_neither_runs_twice_nor_loses_the_result(bench, tmp_path):
    repo = Repo(tmp_path / "source")
    repo.commit({"README.md": "# project\n"}, "initial")
    workers = [bench.worker("first"), bench.worker("second")]
    failures = []
    for i in range(fault_kills()):
        ticket_id, problems = _freeze_past_the_lease(bench, str(repo.path), workers, everything=bool(i % 2))
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    assert not failures, failures
    assert not in_flight_rows()


def _task(ticket_id: int, **state) -> Task | None:
    return db(lambda: Task.objects.filter(ticket_id=ticket_id, key="A", **state).first())


def _freeze_past_the_lease(bench: Bench, source: str, workers: list[Service], everything: bool
                           ) -> tuple[int, Problems]:
    ticket_id = submit_spec(source, [effect_task("A", bench.effects, 20, {"a.txt": "a"}),
                                     effect_task("B", bench.effects, 1, {"b.txt": "b"}, depends_on=["A"])])
    task = wait_until(lambda: _task(ticket_id, status="running"), 90, "task A to run", 0.05,
                      lambda: describe(ticket_id))
    holder = next(w for w in workers if int(task.lease_owner.split(":")[1]) in descendants(w.pid))
    time.sleep(bench.rng.uniform(0.2, 2.0))
    in_flight = _task(ticket_id, status="running", attempts=1) is not None  # a 4 s run: it was, unless very slow
    frozen = holder.freeze(everything)
    stopped_at = time.time()
    try:  # past its lease: the sweep hands the task out again and the other worker runs it to the end
        wait_until(lambda: _task(ticket_id, status="succeeded", attempts__gte=2), 90,
                   "the other worker to run A again", 0.2, lambda: describe(ticket_id))
        taken_over = ""
        time.sleep(bench.rng.uniform(0.0, 2.0))
    except AssertionError as exc:
        taken_over = f"while the worker was frozen, nobody took its task over: {exc}"
    finally:  # whatever happened, nothing stays stopped
        holder.thaw(frozen)
    thawed_at = time.time()
    bench.settled(ticket_id, timeout=120)
    problems = check_ticket(bench, ticket_id, source)
    if taken_over:
        problems.add("stuck", taken_over)
    kept = ((_task(ticket_id).result or {}).get("data") or {}).get("run")
    stale = [trace for run, trace in read_runs(bench.effects.path)[(ticket_id, "A")].items() if run != kept]
    went_on = max((max(trace.times) - thawed_at for trace in stale), default=0.0)
    bench.record("sigstop" + (" (all)" if everything else " (group)"), ticket_id, problems, in_flight=in_flight,
                 frozen_s=round(thawed_at - stopped_at, 2),
                 recovery_s=round(time.time() - thawed_at, 2), stale_run_went_on_s=round(went_on, 2))
    return ticket_id, problems
