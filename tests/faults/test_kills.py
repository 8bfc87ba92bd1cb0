"""SIGKILL of a whole worker (main process, pool and its git children) at seeded random moments — while a
task runs, while a join merges, while an approve continues the merge, while publishing — then a restart,
and every promise checked on the ticket: its end state, each task's side effect kept exactly once, no
duplicate merge, the ref at the old or the new head, nothing left behind."""

from __future__ import annotations

import time

import pytest

from tests.faults.campaign import campaign_timeout, check_ticket, fault_kills, in_flight_rows, ref_is_old_or_new
from tests.faults.processes import alive, cmdline
from tests.faults.scenarios import SCENARIOS

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(campaign_timeout())]


@pytest.mark.parametrize("kind", list(SCENARIOS))
def test_a_killed_worker_loses_nothing_and_runs_nothing_twice(kind, bench, tmp_path):
    scenario = SCENARIOS[kind](bench, tmp_path)
    worker = bench.worker()
    failures, hits, tries = [], 0, 0
    while hits < fault_kills() and tries < 3 * fault_kills():  # a fault that came too late is not counted
        tries += 1
        ticket_id = scenario.submit()
        scenario.window(ticket_id)
        delay = bench.rng.uniform(*scenario.delay)
        time.sleep(delay)
        in_flight = scenario.in_flight(ticket_id)
        hits += in_flight
        survivors = worker.kill()
        killed_at = time.monotonic()
        wrong_ref = ref_is_old_or_new(ticket_id)
        restart_s = worker.start()
        status, _ = bench.settled(ticket_id, timeout=240)
        recovery_s = time.monotonic() - killed_at
        problems = check_ticket(bench, ticket_id, scenario.source)
        if wrong_ref:
            problems.add("lost", wrong_ref)
        for pid in alive(survivors):  # a run's watchdog outlives its worker only to end the run
            problems.add("left_behind", f"process {pid} of the killed worker still runs: {cmdline(pid)}")
        bench.record(kind, ticket_id, problems, delay_s=round(delay, 3), in_flight=in_flight,
                     survivors=len(survivors), restart_s=round(restart_s, 2), recovery_s=round(recovery_s, 2))
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    assert not failures, failures
    assert hits == fault_kills(), f"only {hits} of {tries} faults hit the state they aimed at"
    assert not in_flight_rows()
