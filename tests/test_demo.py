"""The README's first command: the demo serves the dashboard and its tickets move by themselves."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from coordination.domain import dispatch
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.web.demo import make_demo_tickets


@pytest.mark.django_db(transaction=True)
def test_demo_tickets_one_runs_through_and_one_waits_for_review(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    pool = ThreadDispatcher(3)
    dispatch.use(pool)
    clean, conflicting = make_demo_tickets(tmp_path, pace=0.1)
    assert drive(clean.pk, pool, timeout=90) == "done"
    clean.refresh_from_db()
    assert clean.tasks.get(key="D").log.startswith("D sees both branches' files and results")
    b = clean.tasks.get(key="B")
    assert b.log.startswith("working on src/feature_x.py: step 1 of ")  # the log grows while a person watches
    assert drive(conflicting.pk, pool, timeout=90) == "awaiting_review"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.worker
def test_dagmerge_demo_serves_the_dashboard_at_a_pace_a_person_can_watch(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY")}
    env["DAGMERGE_HOME"] = str(tmp_path / "home")
    demo = subprocess.Popen([sys.executable, "-m", "dagmerge_site.cli", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = ""
    try:
        deadline = time.monotonic() + 60
        while "└" not in output:
            assert time.monotonic() < deadline and demo.poll() is None, output
            output += demo.stdout.readline()
        # The address and the password come last, framed; the servers' logs go to files, not here.
        frame = output[output.index("┌"):]
        assert re.search(r"│ log in as admin / \S+ +│", frame)
        assert f"http://127.0.0.1:{port}/tickets/1/" in frame and "Ctrl-C stops it." in frame
        assert "celery" not in output.lower() and "INFO" not in output
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/tickets/1/")  # it answers at once
        assert login.status == 200 and "/accounts/login/" in login.url
        status: dict = {}
        while status.get("status") != "done":
            assert time.monotonic() < deadline + 90, status
            time.sleep(1)
            status = _status(env, 1)
        review = _status(env, 2)
        while review.get("status") != "awaiting_review":
            assert time.monotonic() < deadline + 120, review
            time.sleep(1)
            review = _status(env, 2)
    finally:
        demo.send_signal(signal.SIGTERM)  # the demo stops the servers it started
        demo.wait(timeout=60)
    assert _processes_with_home(env["DAGMERGE_HOME"]) == [], "the demo left processes running"
    runs = {t["key"]: (_at(t["started_at"]), _at(t["finished_at"])) for t in status["tasks"] + review["tasks"]
            if t["started_at"]}
    assert all((end - start).total_seconds() >= 1.5 for start, end in runs.values()), runs  # long enough to see
    for first, second in (("B", "C"), ("fast", "patient")):  # enough worker slots: side by side, both tickets
        assert runs[first][0] < runs[second][1] and runs[second][0] < runs[first][1], (first, second, runs)
    logs = Path(env["DAGMERGE_HOME"]) / "demo" / "logs"
    assert "celery@" in (logs / "worker.log").read_text() and (logs / "web.log").exists()


def _status(env: dict, ticket: int) -> dict:
    proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "status", str(ticket), "--json"], env=env,
                          capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _processes_with_home(home: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and f"DAGMERGE_HOME={home}".encode() in open(f"/proc/{entry}/environ", "rb").read():
                found.append(int(entry))
        except OSError:
            continue
    return found
