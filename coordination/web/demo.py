"""The demo: a sample repository and a ticket A → {B, C} → D made of shell tasks.

D's command checks that it sees B's and C's files (merged code) and both results (synthesis). The tasks
take several seconds each and say what they are doing every second, so a person watching the dashboard
sees them run, side by side where the graph allows, and their logs grow.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model

from coordination.domain.spec import validate_spec
from coordination.models import Ticket
from coordination.scheduling.tickets import submit_ticket
from merges.engine.git import init_repository

TASK_SCRIPT = '''\
"""Demo task: take a moment (so the dashboard shows it running), write a file, report a result."""
import json, os, sys, time

path, text, key, value, pause = sys.argv[1:6]
steps = max(1, round(float(pause)))
for step in range(1, steps + 1):
    print(f"working on {path}: step {step} of {steps}", flush=True)
    time.sleep(float(pause) / steps)
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
with open(path, "w") as f:
    f.write(text + "\\n")
with open(os.environ["DAGMERGE_RESULT"], "w") as f:
    json.dump({key: value}, f)
print(f"wrote {path}")
'''

CHECK_SCRIPT = '''\
"""Demo continuation: the merged code of both branches and both results must be here."""
import json, os, sys, time

time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
missing = [p for p in ("src/feature_x.py", "src/feature_y.py") if not os.path.exists(p)]
context = json.load(open(os.environ["DAGMERGE_CONTEXT"]))
merged = (context.get("synthesis") or {}).get("merged", {})
if missing or merged.get("feature_x") != "done" or merged.get("feature_y") != "done":
    sys.exit(f"join incomplete: missing files {missing}, merged results {merged}")
with open("INTEGRATION.md", "w") as f:
    f.write("feature x and feature y integrated\\n")
print("D sees both branches' files and results:", merged)
'''


def make_sample_repository(path: Path) -> Path:
    git = init_repository(path)
    (path / "README.md").write_text("# Sample project\n\nA repository the dagmerge demo works on.\n")
    (path / "settings.py").write_text("TIMEOUT = 30\n")
    (path / "tools").mkdir()
    (path / "tools" / "task.py").write_text(TASK_SCRIPT)
    (path / "tools" / "check_join.py").write_text(CHECK_SCRIPT)
    git.run("add", "-A")
    git.run("commit", "-q", "-m", "Sample project")
    return path


# Seconds each demo task works: long enough to watch, B and C (and fast and patient) side by side.
PACE = {"A": 4, "B": 9, "C": 6, "D": 3, "fast": 5, "patient": 8, "ship": 2}


def demo_spec(repository: Path, python: str = sys.executable, pace: float = 1.0) -> dict:
    def task(path: str, text: str, key: str, task_key: str) -> str:
        return shlex.join([python, "tools/task.py", path, text, key, "done", str(PACE[task_key] * pace)])

    return {
        "title": "Demo: set up, two features in parallel, integrate",
        "repository": str(repository),
        "base_branch": "main",
        "tasks": [
            {"key": "A", "title": "Set up the package", "command": task("src/__init__.py", "", "setup", "A"),
             "owned_files": ["src/__init__.py"]},
            {"key": "B", "title": "Feature X", "depends_on": ["A"],
             "command": task("src/feature_x.py", "def x():\n    return 'x'", "feature_x", "B"),
             "owned_files": ["src/feature_x.py"]},
            {"key": "C", "title": "Feature Y", "depends_on": ["A"],
             "command": task("src/feature_y.py", "def y():\n    return 'y'", "feature_y", "C"),
             "owned_files": ["src/feature_y.py"]},
            {"key": "D", "title": "Integrate X and Y", "depends_on": ["B", "C"],
             "command": shlex.join([python, "tools/check_join.py", str(PACE["D"] * pace)]),
             "owned_files": ["INTEGRATION.md"]},
        ],
    }


def conflict_spec(repository: Path, python: str = sys.executable, pace: float = 1.0) -> dict:
    """Two tasks set the same setting differently: no resolver may guess, so it waits for a person
    (or for the agent, when ANTHROPIC_API_KEY is set)."""

    def task(value: str, task_key: str) -> str:
        return shlex.join([python, "tools/task.py", "settings.py", f"TIMEOUT = {value}", "timeout", value,
                           str(PACE[task_key] * pace)])

    return {
        "title": "Demo: two tasks disagree on a setting (a review for you)",
        "repository": str(repository),
        "base_branch": "main",
        "tasks": [
            {"key": "fast", "title": "Make requests fail fast", "instructions": "Set TIMEOUT to 5 seconds.",
             "command": task("5", "fast")},
            {"key": "patient", "title": "Tolerate slow networks", "instructions": "Set TIMEOUT to 60 seconds.",
             "command": task("60", "patient")},
            {"key": "ship", "title": "Ship it", "depends_on": ["fast", "patient"],
             "command": shlex.join([python, "-c", "import settings, time; time.sleep(%s); "
                                    "print('TIMEOUT is', settings.TIMEOUT)" % (PACE["ship"] * pace)])},
        ],
    }


def make_demo_tickets(folder: Path, pace: float = 1.0) -> list[Ticket]:
    """The demo's two tickets, on a fresh sample repository: one runs through, one waits for review.
    ``pace`` scales how long the tasks take (tests run them faster)."""
    repository = make_sample_repository(folder / f"sample-{time.strftime('%Y%m%d-%H%M%S')}")
    return [submit_ticket(validate_spec(demo_spec(repository, pace=pace))),
            submit_ticket(validate_spec(conflict_spec(repository, pace=pace)))]


def ensure_admin(username: str, password: str) -> None:
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"is_staff": True,
                                                                              "is_superuser": True})
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
