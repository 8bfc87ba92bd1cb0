"""run_confined's watchdog: a run whose owner stops renewing its lease is killed before the lease lapses."""

from __future__ import annotations

import os
import signal
import time

from merges.engine.isolation import Isolation
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
