"""The same A → {B, C} → D ticket, run by a real Celery worker process on the configured broker
(the filesystem broker on the embedded default; Redis when REDIS_URL is set)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.db import connection

from coordination.domain import dispatch
from coordination.jobs.dispatchers import CeleryDispatcher
from coordination.models import Ticket
from dagmerge_site.celery import app as celery_app
from tests.scenarios import sh, source_repo, submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker(settings, tmp_path):
    celery_app.control.purge()  # nothing left over from another run may reach this worker
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": _database_url(), "DAGMERGE_HOME": str(settings.DAGMERGE_HOME),
           "DAGMERGE_WORKSPACE": str(settings.DAGMERGE_WORKSPACE), "DJANGO_SETTINGS_MODULE": "dagmerge_site.settings"}
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dagmerge_site", "worker", "-Q", "agents,git", "-c", "2",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--hostname", f"test-{os.getpid()}@%h"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "ready." not in log_path.read_text():
        assert worker.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "worker did not start:\n" + log_path.read_text()
        time.sleep(0.2)
    dispatch.use(CeleryDispatcher())
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def _wait_for(ticket: Ticket, statuses: tuple[str, ...], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ticket.refresh_from_db()
        if ticket.status in statuses:
            return
        time.sleep(0.2)
    raise AssertionError(f"ticket still {ticket.status}: {[(t.key, t.status) for t in ticket.tasks.all()]}")


def test_a_celery_worker_runs_the_dag_to_the_end(tmp_path, celery_worker):
    repo = source_repo(tmp_path)
    ticket = submit(repo, [
        {"key": "A", "command": sh("echo a > a.txt")},
        {"key": "B", "depends_on": ["A"], "command": sh('echo b > b.txt; echo "{\\"b\\": 1}" > "$DAGMERGE_RESULT"')},
        {"key": "C", "depends_on": ["A"], "command": sh('echo c > c.txt; echo "{\\"c\\": 2}" > "$DAGMERGE_RESULT"')},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("test -f a.txt && test -f b.txt && test -f c.txt")},
    ])

    _wait_for(ticket, ("done", "failed", "awaiting_review"))

    assert ticket.status == "done", ticket.error
    d = ticket.tasks.get(key="D")
    assert d.synthesis_context["merged"] == {"b": 1, "c": 2}
    workers = {t.result["worker"].split(":")[1] for t in ticket.tasks.all()}
    assert str(os.getpid()) not in workers  # the work happened in the worker's processes, not here
    deadline = time.monotonic() + 30  # the last landing pushes after it settled the ticket: moments after
    while repo.head(f"refs/heads/{ticket.branch}") != ticket.head_sha and time.monotonic() < deadline:
        time.sleep(0.1)
    assert repo.head(f"refs/heads/{ticket.branch}") == ticket.head_sha
