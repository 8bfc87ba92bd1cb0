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
    clean, conflicting = make_demo_tickets(tmp_path)
    assert drive(clean.pk, pool, timeout=90) == "done"
    clean.refresh_from_db()
    assert clean.tasks.get(key="D").log.startswith("D sees both branches' files and results")
    assert drive(conflicting.pk, pool, timeout=90) == "awaiting_review"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.worker
def test_dagmerge_demo_serves_the_dashboard_while_a_worker_finishes_the_ticket(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY")}
    env["DAGMERGE_HOME"] = str(tmp_path / "home")
    demo = subprocess.Popen([sys.executable, "-m", "dagmerge_site.cli", "demo", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = ""
    try:
        deadline = time.monotonic() + 60
        while "log in as admin" not in output:
            assert time.monotonic() < deadline and demo.poll() is None, output
            output += demo.stdout.readline()
        assert re.search(r"log in as admin / \S+", output)
        status = {}
        while status.get("status") != "done":
            assert time.monotonic() < deadline + 60, status
            time.sleep(1)
            proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "status", "1", "--json"], env=env,
                                  capture_output=True, text=True)
            status = json.loads(proc.stdout) if proc.returncode == 0 else {}
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/tickets/1/")  # follows to the login page
        assert login.status == 200 and "/accounts/login/" in login.url
    finally:
        demo.send_signal(signal.SIGTERM)  # the demo stops the servers it started
        demo.wait(timeout=60)
    assert _processes_with_home(env["DAGMERGE_HOME"]) == [], "the demo left processes running"


def _processes_with_home(home: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and f"DAGMERGE_HOME={home}".encode() in open(f"/proc/{entry}/environ", "rb").read():
                found.append(int(entry))
        except OSError:
            continue
    return found
