"""run_confined's watchdog: a run whose owner stops renewing its lease is killed before the lease lapses."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from merges.engine.isolation import Isolation
from merges.engine.processes import _PidsCgroup
from merges.engine.runner import run_confined


def test_a_run_whose_alive_file_goes_stale_is_killed_by_its_watchdog(tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    started = time.monotonic()
    done = run_confined(["sh", "-c", "sleep 30 & sleep 30"], isolation=Isolation.detect(), workdir=tmp_path,
                        extra_env={}, timeout=60, alive_file=alive, alive_within=1.0)
    assert time.monotonic() - started < 10
    assert done.exit_code == -signal.SIGKILL and "lease was not renewed" in done.output_tail


def test_a_run_whose_owner_keeps_renewing_runs_to_its_end(tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    script = f"for i in 1 2 3 4 5 6; do sleep 0.5; touch {alive}; done; echo finished"
    # The run itself renews here, standing in for the worker's heartbeat (a confined run cannot reach the
    # file under bubblewrap, so the test runs it in the folder the run may write).
    done = run_confined(["sh", "-c", script], isolation=Isolation.detect(), workdir=tmp_path, extra_env={},
                        timeout=60, alive_file=alive, alive_within=1.5)
    assert done.exit_code == 0 and "finished" in done.output_tail
    assert os.path.exists(alive)


def test_run_cgroups_a_killed_worker_left_are_removed_once_old_and_empty():
    parent = _PidsCgroup.parent()
    if parent is None:
        pytest.skip("no pids cgroup on this machine")
    own = parent / f"test-{os.getpid()}"  # out of the way of other runs on this machine
    own.mkdir()
    left, busy = _PidsCgroup(own / "run-left"), _PidsCgroup(own / "run-busy")
    left.path.mkdir()  # a worker killed during the run never closes it
    busy.path.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        busy.procs.write_text(str(sleeper.pid))
        assert _PidsCgroup.remove_abandoned(own) == []  # young: maybe a run being set up
        assert _PidsCgroup.remove_abandoned(own, older_than_s=0) == [left.path]
        assert not left.path.exists() and busy.path.exists()  # a process runs in that one
    finally:
        sleeper.kill()
        sleeper.wait()
        for group in (left, busy):
            group.close()
        own.rmdir()


def test_the_exit_watch_wakes_when_the_child_ends_and_leaves_it_unreaped():
    """run_confined waits on a pidfd instead of sleeping between checks: the wait ends with the child
    (asked for a minute, it returns long before), and the child stays a zombie for the group kill."""
    from merges.engine.runner import _ExitWatch

    child = subprocess.Popen(["sh", "-c", "sleep 0.3"])
    try:
        started = time.monotonic()
        with _ExitWatch(child.pid) as watch:
            watch.wait(60)
        assert time.monotonic() - started < 30
        assert os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None  # ended, not reaped
    finally:
        child.wait()
    assert child.returncode == 0
