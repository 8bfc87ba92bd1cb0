"""bench/sandboxes.py as a smoke test: it runs end to end on a small repository.

No timing is asserted (CI machines are shared): each of the three ways must give its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_sandbox_benchmark_runs_small(tmp_path):
    figures = tmp_path / "sandboxes.json"
    run = subprocess.run([sys.executable, "bench/sandboxes.py", "--files", "200", "--rounds", "2", "--json",
                          str(figures)], cwd=ROOT, capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "pool / worktree" in run.stdout
    measured = json.loads(figures.read_text())
    assert measured["files"] == 200 and measured["rounds"] == 2
    for way in ("worktree", "folder", "pool"):
        assert measured[way]["setup_ms"] > 0 and measured[way]["cleanup_ms"] > 0
    assert measured["pool_over_worktree"] > 0
    assert measured["pool_scrubbed"] == 3  # every round (the first one too) left the slot to the next
