"""bench/scale.py --small as a smoke test: the benchmark runs end to end on the embedded default.

No timing is asserted (CI machines are shared); the run must finish both tickets, measure the scheduler
at two sizes and sample the worker's memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)
def test_the_scale_benchmark_runs_small_on_the_embedded_default(tmp_path):
    figures = tmp_path / "scale.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DAGMERGE_HOME")}
    run = subprocess.run([sys.executable, "bench/scale.py", "--small", "--backends", "embedded", "--json",
                          str(figures)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=850)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "× baseline" in run.stdout and "advance per event" in run.stdout and "peak RSS" in run.stdout
    [measured] = json.loads(figures.read_text())["runs"]
    embedded = measured["backends"]["embedded"]
    assert embedded["chain"]["tasks"] == 20 and embedded["ticket"]["tasks"] == 30
    assert measured["baseline_s"] > 0 and embedded["ticket"]["wall_s"] > 0
    assert set(embedded["advance"]) == {"10", "100"}
    assert all(v > 0 for size in embedded["advance"].values() for v in size.values())
    assert embedded["ticket"]["memory"]["dagmerge run"]["peak_mb"] > 0
