"""What a task can reach, tried end to end: a submitted ticket on a real repository, run by the
ThreadDispatcher (or by ``dagmerge run`` in a process of its own, whose environment holds the canaries from
its start, as a worker's does). Each escape writes what it found into a file the task commits, so the test
reads what the task saw from the published branch.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from dagmerge_site import settings as site
from merges.engine import runner
from merges.engine.isolation import Isolation
from merges.engine.processes import Limits
from tests.processes import SANDBOX_PYTHON, marker, matching
from tests.scenarios import run_ticket, sh, source_repo
from tests.security.conftest import CANARIES

pytestmark = pytest.mark.django_db(transaction=True)

READ_PROC = ("for f in /proc/$PPID/environ /proc/1/environ /proc/[0-9]*/environ /proc/[0-9]*/cmdline; "
             "do tr '\\0' '\\n' < $f; echo; done > proc.txt 2>&1; env > env.txt")


def leaked(text: str) -> list[str]:
    return [name for name, value in CANARIES.items() if value in text]


def test_a_worker_started_with_secrets_gives_its_tasks_none_of_them_through_proc_or_environment(tmp_path):
    """``dagmerge run`` is the worker here: its environment holds every canary from exec on, so
    /proc/<worker>/environ would show them to any task that can see the worker."""
    repo = source_repo(tmp_path)
    home = tmp_path / "home"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"title": "proc", "repository": str(repo.path), "tasks": [
        {"key": "A", "command": sh(READ_PROC)},
        {"key": "B", "depends_on": ["A"], "command": sh("ls /proc > procs.txt")},
    ]}))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(CANARIES, DAGMERGE_HOME=str(home), DATABASE_URL=f"sqlite:///{home}/db-{CANARIES['DATABASE_URL'][-4:]}.sqlite3")
    done = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "run", str(spec), "--json"], env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    seen = repo.show(report["head"], "proc.txt") + repo.show(report["head"], "env.txt")
    assert "DAGMERGE_TASK=A" in seen  # the reading worked; the sandbox's own processes are there to read
    assert leaked(seen) == [] and leaked(done.stdout + done.stderr) == []
    assert len(repo.show(report["head"], "procs.txt").split()) < 80  # its own few processes, not the host's
    [database] = home.glob("db-*.sqlite3")
    assert leaked(b"".join(p.read_bytes() for p in home.glob("db-*")).decode(errors="replace")) == []
    with sqlite3.connect(database) as db:
        isolation = [json.loads(r)["isolation"] for (r,) in db.execute("select result from coordination_task")]
    assert all(i.startswith("bubblewrap") for i in isolation), isolation


def test_the_secret_key_and_the_database_cannot_be_read_by_relative_or_absolute_path(tmp_path, exposed_home):
    """Both the home this test lays out (outside /tmp) and the worker's real one (the settings module's own
    values, which the test's settings do not change)."""
    real_db = site.DATABASES["default"]["NAME"] if "sqlite" in site.DATABASES["default"]["ENGINE"] else "/nonexistent"
    paths = [*(("../" * depth) + name for depth in range(1, 7) for name in ("secret_key", "secrets/secret_key",
                                                                             "dagmerge.sqlite3")),
             f"{exposed_home}/secret_key", f"{exposed_home}/secrets/secret_key", f"{exposed_home}/dagmerge.sqlite3",
             str(real_db), str(site.DAGMERGE_SECRETS_DIR / "secret_key")]
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh(
        f"for p in {' '.join(paths)}; do cat $p; done > read.txt 2>&1; ls -a {exposed_home} > home.txt")}])
    assert ticket.status == "done", ticket.error
    read = repo.show(ticket.head_sha, "read.txt")
    assert read.count("No such file or directory") >= len(paths)
    assert leaked(read) == [] and settings.SECRET_KEY not in read and "SQLite format 3" not in read
    assert repo.show(ticket.head_sha, "home.txt").split() == [".", "..", "workspace"]  # the path down, no more


def test_a_symlink_out_of_the_worktree_is_committed_as_a_link_and_reads_nothing(tmp_path, exposed_home):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh(f"ln -s {exposed_home}/secret_key absolute; ln -s ../../../../secret_key relative; "
                                   "cat absolute relative > read-by-A.txt 2>&1; true")},
        {"key": "B", "depends_on": ["A"], "command": sh("cat absolute relative > read-by-B.txt 2>&1; true")},
    ])
    assert ticket.status == "done", ticket.error
    for name in ("absolute", "relative"):
        mode = repo.git.text("ls-tree", ticket.head_sha, name).split()[0]
        assert mode == "120000"  # a link: its content is the path, never the file behind it
    assert repo.show(ticket.head_sha, "absolute") == f"{exposed_home}/secret_key"
    for name in ("read-by-A.txt", "read-by-B.txt"):
        assert leaked(repo.show(ticket.head_sha, name)) == []


def test_writes_outside_the_worktree_land_nowhere(tmp_path, exposed_home):
    repo = source_repo(tmp_path)
    targets = ["../escape.txt", "../../escape.txt", "../../other-task/escape.txt", f"{exposed_home}/escape.txt",
               f"{exposed_home}/workspace/repos/escape.txt", str(repo.path / "escape.txt"), "/etc/dagmerge-escape"]
    ticket = run_ticket(repo, [{"key": "A", "command": sh(
        "; ".join(f"echo x > {t}" for t in targets) + "; echo mine > mine.txt")}])
    assert ticket.status == "done", ticket.error
    assert sorted(p.name for p in exposed_home.rglob("escape.txt")) == []
    assert not (repo.path / "escape.txt").exists() and not Path("/etc/dagmerge-escape").exists()
    assert ticket.tasks.get(key="A").result["changed_files"] == ["mine.txt"]


def test_a_daemon_left_running_is_dead_when_its_task_ends(tmp_path):
    repo = source_repo(tmp_path)
    mark = marker()
    ticket = run_ticket(repo, [{"key": "A", "command": sh(
        f"sleep {mark} & setsid sleep {mark} & sh -c 'trap \"\" TERM HUP; sleep {mark}' & "
        f"(nohup sleep {mark} >/dev/null 2>&1 &); sleep 0.3; echo started")}])
    assert ticket.status == "done", ticket.error
    assert "started" in ticket.tasks.get(key="A").log
    assert matching(mark) == []


def test_a_fork_bomb_is_bounded_and_its_task_ends(tmp_path, monkeypatch):
    if Isolation.detect().processes == "none":
        pytest.fail("no process bound on this machine (root without a pids cgroup): refusing to start a fork bomb")
    monkeypatch.setattr(runner, "Limits", functools.partial(Limits, processes=64))  # the worker's bound, lowered
    mark = f"bomb{os.getpid()}x{time.monotonic_ns()}"
    peak, finished = 0, threading.Event()

    def count() -> None:
        nonlocal peak
        while not finished.is_set():
            peak = max(peak, len(matching(mark)))
            time.sleep(0.02)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        ticket = run_ticket(source_repo(tmp_path), [{"key": "A", "timeout_seconds": 8, "command": sh(
            f"bash -c ':(){{ :|:& }};: # {mark}'; sleep 2; echo survived > survived.txt")}])
    finally:
        finished.set()
        counter.join()
    assert 32 <= peak <= 64, peak  # it did explode, up to the bound
    assert ticket.status == "done", ticket.error  # the task itself went on and ended
    assert matching(mark) == []


def test_a_gigabyte_of_output_is_capped_in_the_log_and_the_events(tmp_path):
    ticket = run_ticket(source_repo(tmp_path), [{"key": "A", "timeout_seconds": 120, "command": sh(
        "head -c 1073741824 /dev/zero | tr '\\0' y; echo; echo END")}])
    a = ticket.tasks.get(key="A")
    assert ticket.status == "done", ticket.error
    assert len(a.log) <= 64 * 1024 and a.log.endswith("END\n")
    assert len(a.result["output_tail"]) <= 4000
    logged = sum(e.payload["bytes"] for e in ticket.events.filter(kind="task.log"))
    assert Limits().output_bytes <= logged <= Limits().output_bytes + 1024  # the cap, and its one-line notice


def test_nul_bytes_in_output_are_stored_and_a_result_holding_one_fails_its_task_in_one_line(tmp_path):
    """PostgreSQL refuses NUL in text: a task printing one must not leave its ticket stuck."""
    ticket = run_ticket(source_repo(tmp_path), [
        {"key": "A", "command": sh("printf 'before\\000after\\n'")},
        {"key": "B", "command": sh("printf '{\"x\": \"a\\\\u0000b\"}' > \"$DAGMERGE_RESULT\"")},
    ])
    a, b = ticket.tasks.get(key="A"), ticket.tasks.get(key="B")
    assert a.status == "succeeded" and "before\ufffdafter" in a.log
    assert b.status == "failed" and b.error == ("$DAGMERGE_RESULT holds a NUL character (\\u0000), which the "
                                                "database cannot store")


def test_a_result_file_over_a_mebibyte_fails_its_task_in_one_line(tmp_path):
    ticket = run_ticket(source_repo(tmp_path), [{"key": "A", "command": sh(
        "printf '\"' > \"$DAGMERGE_RESULT\"; head -c 2000000 /dev/zero | tr '\\0' x >> \"$DAGMERGE_RESULT\"; "
        "printf '\"' >> \"$DAGMERGE_RESULT\"")}])
    assert ticket.tasks.get(key="A").error == "$DAGMERGE_RESULT holds 2000002 bytes; at most 1048576 are kept"



def test_a_result_file_that_is_huge_a_link_or_a_fifo_is_refused_before_it_is_read(tmp_path):
    """The result is checked on the file dagmerge opened (no link followed, no FIFO waited on) before a byte
    is read: a gigabyte (sparse: it costs the task nothing) is never held in the worker's memory."""
    host_file = tmp_path / "worker-file"
    host_file.write_text("CANARY-HOST-FILE")
    ticket = run_ticket(source_repo(tmp_path), [
        {"key": "huge", "command": sh('truncate -s 1G "$DAGMERGE_RESULT"')},
        {"key": "link", "command": sh(f'ln -s {host_file} "$DAGMERGE_RESULT"')},
        {"key": "fifo", "command": sh('mkfifo "$DAGMERGE_RESULT"')},
    ])
    errors = {task.key: task.error for task in ticket.tasks.all()}
    assert errors == {"huge": "$DAGMERGE_RESULT holds 1073741824 bytes; at most 1048576 are kept",
                      "link": "$DAGMERGE_RESULT is a symbolic link, not a regular file",
                      "fifo": "$DAGMERGE_RESULT is not a regular file"}
    assert "CANARY-HOST-FILE" not in str([task.result for task in ticket.tasks.all()])

def test_the_network_is_off_unless_the_task_asks_for_it(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    probe = (f"{SANDBOX_PYTHON} -I -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 5)\" "
             "&& echo CONNECTED > net-$DAGMERGE_TASK.txt || echo REFUSED > net-$DAGMERGE_TASK.txt")
    repo = source_repo(tmp_path)
    try:
        ticket = run_ticket(repo, [{"key": "off", "command": sh(probe)},
                                   {"key": "on", "command": sh(probe), "network": True}])
    finally:
        server.close()
    assert ticket.status == "done", ticket.error
    assert repo.show(ticket.head_sha, "net-off.txt") == "REFUSED\n"
    assert repo.show(ticket.head_sha, "net-on.txt") == "CONNECTED\n"
