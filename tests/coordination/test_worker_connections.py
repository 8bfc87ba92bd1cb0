"""A Celery worker process keeps its database connection from job to job, and replaces a broken one."""

from __future__ import annotations

import pytest
from celery.signals import task_prerun, worker_process_init
from django.db import connection, connections

from coordination.models import Ticket

# Connections are opened, kept and dropped here: real ones, no test transaction around them.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_process():
    """What a prefork child of a worker does on start, undone afterwards (the settings are shared)."""
    saved = {alias: dict(connections[alias].settings_dict) for alias in connections}
    connection.close()  # a new pool process starts without one (Celery's fixup drops the parent's)
    worker_process_init.send(sender=None)
    yield
    task_prerun.disconnect(dispatch_uid="dagmerge-check-connection")
    for alias, kept in saved.items():
        connections[alias].settings_dict.clear()
        connections[alias].settings_dict.update(kept)
    connection.close()


def test_a_worker_process_keeps_its_connection_from_one_job_to_the_next(worker_process):
    Ticket.objects.count()
    opened = connection.connection
    task_prerun.send(sender=None)  # the next job starts
    Ticket.objects.count()
    assert opened is not None and connection.connection is opened


def test_a_connection_the_database_dropped_is_replaced_before_the_next_job(worker_process):
    if connection.vendor != "postgresql":
        pytest.skip("a SQLite connection is a file: PostgreSQL ends sessions (a restart)")
    import psycopg

    Ticket.objects.count()
    opened, backend = connection.connection, connection.connection.info.backend_pid
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])
    task_prerun.send(sender=None)
    assert Ticket.objects.count() == 0  # answered, on a new session
    assert connection.connection is not opened


def test_a_statement_a_worker_repeats_is_prepared_by_postgresql_and_planned_once(worker_process):
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements: PostgreSQL's")
    for _ in range(6):  # psycopg prepares a statement the fifth time a connection runs it
        Ticket.objects.filter(pk=0).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "coordination_ticket"' in statement and "$1" in statement for statement in prepared)


def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them(monkeypatch):
    from dagmerge_site.settings import _databases

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/dagmerge")
    assert _databases()["default"]["OPTIONS"]["server_side_binding"] is True
    monkeypatch.setenv("DAGMERGE_PREPARED_STATEMENTS", "false")
    assert "server_side_binding" not in _databases()["default"].get("OPTIONS", {})
