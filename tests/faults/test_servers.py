"""Redis and PostgreSQL restarted in the middle of tickets (the servers pass only).

Redis runs without persistence (as .ci/run starts it), so a restart loses every queued message and the
sweep must send them again; a PostgreSQL restart (``-m fast``) cuts every session, so heartbeats, jobs and
the sweep meet database errors and must ride them out. Each restart comes at a seeded random moment of a
ticket {B, C} → D whose merges take a second; the ticket must still end done with every promise kept.
"""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from tests.faults.campaign import Bench, campaign_timeout, check_ticket, fault_kills, in_flight_rows
from tests.faults.processes import local_postgres, local_redis, restart_postgres, restart_redis
from tests.faults.scenarios import JoinMerging

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(campaign_timeout())]


def _servers_pass() -> None:
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        pytest.skip("the servers pass only: DATABASE_URL and REDIS_URL are unset, so there is no PostgreSQL "
                    "or Redis to restart (the embedded default runs on SQLite and a filesystem broker)")


def _campaign(bench: Bench, tmp_path, kind: str, restart) -> None:
    scenario = JoinMerging(bench, tmp_path)
    worker = bench.worker()
    failures = []
    for _ in range(fault_kills()):
        ticket_id = scenario.submit()
        delay = bench.rng.uniform(0.5, 8.0)  # somewhere in the ticket's run: tasks, merges, publishing
        time.sleep(delay)
        restarted_at = time.monotonic()
        restart()
        # A worker may not survive the broker going away (Celery can die reconnecting to Redis): in
        # production its supervisor starts it again, and so does the campaign, counting it.
        status, _ = bench.settled(ticket_id, timeout=240, supervise=[worker])
        problems = check_ticket(bench, ticket_id, scenario.source)
        bench.record(kind, ticket_id, problems, delay_s=round(delay, 3), in_flight=True,
                     recovery_s=round(time.monotonic() - restarted_at, 2), worker_restarted=bench.restarted)
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    assert not failures, failures
    assert not in_flight_rows()


def test_redis_restarted_mid_run_loses_nothing(bench, tmp_path):
    _servers_pass()
    target = local_redis(os.environ["REDIS_URL"])
    if isinstance(target, str):
        pytest.skip(f"cannot restart Redis here: {target}")
    _campaign(bench, tmp_path, "redis restart", lambda: restart_redis(*target))


def test_postgres_restarted_mid_run_loses_nothing(bench, tmp_path):
    _servers_pass()
    db = connection.settings_dict
    cluster = local_postgres(db["HOST"] or "localhost", int(db["PORT"] or 5432))
    if isinstance(cluster, str):
        pytest.skip(f"cannot restart PostgreSQL here: {cluster}")
    _campaign(bench, tmp_path, "postgres restart", lambda: restart_postgres(cluster))
