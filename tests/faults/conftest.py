"""The fault campaign's fixtures: an installation of real processes (beat, workers, daphne) with short leases.

Run on its own: ``./scripts/faults.sh`` (``pytest -m faults tests/faults``). DAGMERGE_FAULT_KILLS sets the
faults of each kind (CI: a few), DAGMERGE_FAULT_SEED the seed of every random moment, and
DAGMERGE_FAULT_REPORT a file each fault is appended to as a JSON line (docs/reliability.md is made from it).
"""

from __future__ import annotations

import json
import os
import random

import pytest
from django.db import connection

from coordination.domain import dispatch
from coordination.jobs.dispatchers import CeleryDispatcher
from dagmerge_site.celery import app as celery_app
from tests.faults.campaign import RECORDS, Bench, EffectLog
from tests.faults.processes import celery_beat, stop_all
from tests.faults.report import summary

# Short leases keep recovery quick; every one can be set from outside for a longer campaign.
CAMPAIGN_ENV = {
    "DAGMERGE_LEASE_SECONDS": "5",  # the shortest the settings allow
    "DAGMERGE_SWEEP_SECONDS": "1",
    "DAGMERGE_RESEND_SECONDS": "5",
    "DAGMERGE_LOG_LEVEL": "INFO",
}


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def backend() -> str:
    return "postgres+redis" if connection.vendor == "postgresql" else "embedded"


@pytest.fixture
def bench(transactional_db, settings, tmp_path, request) -> Bench:
    """Beat (the sweep, every second) running for the whole test; workers are started by the test.
    Everything it started is stopped before the database is flushed."""
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    env.update({name: os.environ.get(name, value) for name, value in CAMPAIGN_ENV.items()})
    env.update({"DATABASE_URL": database_url(), "DAGMERGE_HOME": str(settings.DAGMERGE_HOME),
                "DAGMERGE_WORKSPACE": str(settings.DAGMERGE_WORKSPACE), "TMPDIR": str(tmp_path / "tmp"),
                "DJANGO_SETTINGS_MODULE": "dagmerge_site.settings"})
    (tmp_path / "tmp").mkdir()
    (tmp_path / "logs").mkdir()
    settings.DAGMERGE_LEASE_SECONDS = int(env["DAGMERGE_LEASE_SECONDS"])
    seed = f"{os.environ.get('DAGMERGE_FAULT_SEED', '9')}:{request.node.name}"
    bench = Bench(root=tmp_path, env=env, backend=backend(), rng=random.Random(seed),
                  effects=EffectLog(tmp_path / "effects.log"))
    celery_app.control.purge()  # nothing left over from another test may reach these workers
    beat = celery_beat(env, bench.logs)
    beat.start()
    dispatch.use(CeleryDispatcher())
    yield bench
    stop_all([*bench.workers, beat])
    bench.effects.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if RECORDS:
        terminalreporter.section("fault campaign")
        for line in summary(RECORDS):
            terminalreporter.write_line(line)
        for entry in RECORDS:  # in full: an assertion's message is cut short, and CI keeps only this log
            if entry["problems"]:
                terminalreporter.write_line(f"{entry['backend']} {entry['kind']} ticket {entry['ticket']}: "
                                            f"{json.dumps(entry['problems'])}")
                terminalreporter.write_line(f"  story: {entry.get('story')}")

