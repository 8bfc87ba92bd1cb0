"""Redis and PostgreSQL restarted in the middle of tickets (the servers pass only), and PostgreSQL down at
the moment a finished run's result is recorded.

Redis runs without persistence (as .ci/run starts it), so a restart loses every queued message and the
sweep must send them again; a PostgreSQL restart (``-m fast``) cuts every session, so heartbeats, jobs and
the sweep meet database errors and must ride them out. Each restart comes at a seeded random moment of a
ticket {B, C} → D whose merges take a second; the ticket must still end done with every promise kept.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connection

from coordination.models import Task
from tests.faults.campaign import (
    Bench,
    campaign_timeout,
    check_ticket,
    db,
    effect_task,
    ended,
    fault_kills,
    in_flight_rows,
    read_runs,
)
from tests.faults.processes import (
    local_postgres,
    local_redis,
    restart_postgres,
    restart_redis,
    start_postgres,
    stop_postgres,
)
from tests.faults.scenarios import JoinMerging, submit_spec
from tests.gitrepo import Repo

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(campaign_timeout())]


def _servers_pass() -> None:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        pytest.skip("the servers pass only: DATABASE_URL and REDIS_URL are unset, so there is no PostgreSQL "
                    "or Redis to restart (the embedded default runs on SQLite and a filesystem broker)")


def _campaign(bench: Bench, tmp_path, kind: str, restart) -> None:
    scenario = JoinMerging(bench, tmp_path)
    worker = bench.worker()
    failures, hits, tries = [], 0, 0
    while hits < fault_kills() and tries < 3 * fault_kills():  # a restart after the ticket ended is not counted
        tries += 1
        ticket_id = scenario.submit()
        delay = bench.rng.uniform(0.5, 8.0)  # somewhere in the ticket's run: tasks, merges, publishing
        time.sleep(delay)
        in_flight = not db(lambda ticket_id=ticket_id: ended(ticket_id))
        hits += in_flight
        restarted_at = time.monotonic()
        restart()
        # A worker may not survive the broker going away (Celery can die reconnecting to Redis): in
        # production its supervisor starts it again, and so does the campaign, counting it.
        status, _ = bench.settled(ticket_id, timeout=240, supervise=[worker])
        problems = check_ticket(bench, ticket_id, scenario.source)
        bench.record(kind, ticket_id, problems, delay_s=round(delay, 3), in_flight=in_flight,
                     recovery_s=round(time.monotonic() - restarted_at, 2), worker_restarted=bench.restarted)
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    # Not asserted, unlike a kill's window: how long the ticket runs depends on the machine, and a restart
    # that came after it ended is only recorded (in_flight false), with another ticket tried.
    assert not failures, failures
    assert not in_flight_rows()


def test_redis_restarted_mid_run_loses_nothing(bench, tmp_path):
    _servers_pass()
    target = local_redis(os.environ["REDIS_URL"])
    if isinstance(target, str):
        pytest.skip(f"cannot restart Redis here: {target}")
    _campaign(bench, tmp_path, "redis restart", lambda: restart_redis(*target))


def _postgres_cluster() -> list[str]:
    _servers_pass()
    db = connection.settings_dict
    cluster = local_postgres(db["HOST"] or "localhost", int(db["PORT"] or 5432))
    if isinstance(cluster, str):
        pytest.skip(f"cannot restart PostgreSQL here: {cluster}")
    return cluster


def test_postgres_restarted_mid_run_loses_nothing(bench, tmp_path):
    cluster = _postgres_cluster()
    _campaign(bench, tmp_path, "postgres restart", lambda: restart_postgres(cluster))


DOWN_S = 3.0  # PostgreSQL stays stopped this long after the run's end, then takes a few seconds to start


def test_postgres_down_while_a_finished_run_is_recorded_keeps_the_result_and_runs_nothing_twice(bench, tmp_path):
    """PostgreSQL is stopped the moment the task's command has done its work (its ``end`` line: the run
    then commits and records its result) and started again a few seconds later. The worker must record
    the result once the database is back — the task succeeded, run once — rather than fail it or leave it
    to be run again."""
    cluster = _postgres_cluster()
    bench.env["DAGMERGE_LEASE_SECONDS"] = "30"  # the outage (stopped 3 s, then starting) is inside the lease
    repo = Repo(tmp_path / "source")
    repo.commit({"README.md": "# project\n"}, "initial")
    worker = bench.worker()
    failures, hits = [], 0
    for _ in range(fault_kills()):
        log_path, log_seen = worker.log_path, worker.log_path.stat().st_size
        ticket_id = submit_spec(str(repo.path), [effect_task("A", bench.effects, 2, {"a.txt": "a"})])
        stopped_at: list[float] = []

        def at_the_end(line: str, ticket_id: int = ticket_id, stopped_at: list[float] = stopped_at) -> None:
            if line.startswith(f"end {ticket_id} A ") and not stopped_at:
                stop_postgres(cluster)  # the run waits for this answer, then records its result
                stopped_at.append(time.monotonic())
                threading.Timer(DOWN_S, start_postgres, (cluster,)).start()

        bench.effects.before_answer = at_the_end
        bench.settled(ticket_id, timeout=240, supervise=[worker])
        bench.effects.before_answer = None
        problems = check_ticket(bench, ticket_id, str(repo.path))
        runs = read_runs(bench.effects.path)[(ticket_id, "A")]
        attempts = db(lambda ticket_id=ticket_id: Task.objects.get(ticket_id=ticket_id, key="A").attempts)
        if len(runs) != 1 or attempts != 1:
            problems.add("duplicated", f"task A ran {len(runs)} times ({attempts} attempts)")
        logged = log_path.read_bytes()[log_seen:].decode(errors="replace")
        if worker.log_path != log_path:  # PostgreSQL going away took the worker down and it was started again
            logged += worker.log_path.read_text(errors="replace")
        retried = "retrying while the lease is held" in logged
        hits += retried
        bench.record("postgres down while recording", ticket_id, problems, in_flight=retried,
                     recovery_s=round(time.monotonic() - stopped_at[0], 2) if stopped_at else None,
                     worker_restarted=bench.restarted)
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    assert not failures, failures
    assert hits == fault_kills(), "the outage did not reach the recording of the result"
    assert not in_flight_rows()
