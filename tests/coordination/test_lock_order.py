"""Row locks are taken ticket first, then join, by every transaction that takes both: the other order
deadlocked a join's convergence with a recovery recording that join's merge (seen in CI on PostgreSQL)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from coordination.domain import dispatch
from coordination.models import Join, Ticket
from coordination.scheduling import landing
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL's")]


def _waiting_on_a_lock(backend_pid: int) -> bool:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [backend_pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def test_a_join_convergence_waits_for_the_ticket_before_taking_the_join(tmp_path):
    dispatch.use(RecordingDispatcher())
    ticket = submit(source_repo(tmp_path), [{"key": "B", "command": sh("true")}, {"key": "C", "command": sh("true")},
                                            {"key": "D", "depends_on": ["B", "C"], "command": sh("true")}])
    join = Join.objects.get(ticket=ticket)
    converging_pid, failures = [], []

    def converge() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                converging_pid.append(cursor.fetchone()[0])
            landing.converge_join(join.pk)  # the join is still waiting: it looks and lets go
        except Exception as exc:  # noqa: BLE001 -- reported to the test's thread
            failures.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():  # the order record_merge_outcome takes them in
        Ticket.objects.select_for_update().get(pk=ticket.pk)
        converging = threading.Thread(target=converge)
        converging.start()
        deadline = time.monotonic() + 10
        while not (converging_pid and _waiting_on_a_lock(converging_pid[0])) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert converging_pid and _waiting_on_a_lock(converging_pid[0]), "the convergence never waited"
        Join.objects.select_for_update().get(pk=join.pk)  # a deadlock, if the convergence held the join
    converging.join(timeout=10)
    assert not converging.is_alive() and failures == []
    assert Join.objects.get(pk=join.pk).status == "waiting"
