"""The ``dagmerge`` command as scripts use it: a fresh home, a real repository, exit codes, JSON."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import sh, source_repo


def dagmerge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DAGMERGE_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "dagmerge_site.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def _spec(tmp_path: Path, repo, tasks, **fields) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"title": "cli", "repository": str(repo.path), "base_branch": "main",
                                "tasks": tasks, **fields}))
    return path


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_run_drives_the_ticket_to_done_and_prints_the_documented_json(tmp_path, home):
    repo = source_repo(tmp_path)
    spec = _spec(tmp_path, repo, [
        {"key": "A", "command": sh("echo a > a.txt")},
        {"key": "B", "depends_on": ["A"], "command": sh("echo b > b.txt")},
        {"key": "C", "depends_on": ["A"], "command": sh("echo c > c.txt")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("test -f b.txt && test -f c.txt")},
    ])

    proc = dagmerge(home, "run", str(spec), "--json", "--concurrency", "2")

    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "done" and report["branch"] == f"ticket/{report['ticket']}"
    assert report["head"] == repo.head(f"refs/heads/ticket/{report['ticket']}")
    assert [t["key"] for t in report["tasks"]] == ["A", "B", "C", "D"]
    assert all(t["status"] == "succeeded" and t["started_at"] and t["finished_at"] for t in report["tasks"])
    [join] = report["joins"]
    assert join["continuation"] == "D" and join["sources"] == ["B", "C"] and join["status"] == "merged"
    assert sorted(join["merge_order"]) == ["B", "C"] and join["scores"] == {"B": 0, "C": 0}
    assert "task D: running" in proc.stderr  # progress goes to stderr when stdout carries JSON

    status = dagmerge(home, "status", str(report["ticket"]), "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["head"] == report["head"]


def test_run_exits_3_when_a_join_waits_for_review(tmp_path, home):
    text = numbered_lines(60)
    repo = source_repo(tmp_path, {"config.py": text})
    spec = _spec(tmp_path, repo, [
        {"key": "B", "command": sh(f"printf '{replace_line(text, 50, 'B = 1')}' > config.py")},
        {"key": "C", "command": sh(f"printf '{replace_line(text, 50, 'C = 2')}' > config.py")},
        {"key": "D", "depends_on": ["B", "C"], "command": "true"},
    ])
    proc = dagmerge(home, "run", str(spec))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    attempt = json.loads(dagmerge(home, "status", "1", "--json").stdout)["joins"][0]["attempt"]
    # People read it: names, not event kinds; the side that merged is said to have merged; why, and where.
    assert re.search(r"join → D: ([BC]) merged; (?!\1)[BC] conflicts, waits for a person: \S", proc.stdout)
    assert proc.stdout.splitlines()[-3] == "ticket 1 awaiting review: ticket/1 at " + json.loads(
        dagmerge(home, "status", "1", "--json").stdout)["head"][:12]
    assert proc.stdout.splitlines()[-2].startswith(f"needs you: merge #{attempt} (join → D) waits for a person: ")
    assert proc.stdout.splitlines()[-1] == f"  review it at http://127.0.0.1:8000/reviews/{attempt}/"
    assert "merge.conflicted" not in proc.stdout and "ticket :" not in proc.stdout and proc.stderr == ""

    status = dagmerge(home, "status", "1")
    lines = status.stdout.splitlines()
    assert lines[0].startswith("ticket 1: cli — awaiting review (ticket/1 at ")
    assert lines[1] == "  3 tasks: 2 succeeded, 1 pending"
    assert re.match(r"  B  B  succeeded  \d+ ms|  B  B  succeeded  \d+\.\d s", lines[2]), lines[2]
    assert lines[4] == "  D  D  pending"
    assert lines[5] == f"  join → D from B, C: awaiting review, merge #{attempt}"
    assert lines[-1] == f"  review it at http://127.0.0.1:8000/reviews/{attempt}/"
    assert status.stderr == ""  # nothing from the libraries (kombu used to warn about a missing hostname)


def test_run_exits_1_when_a_task_fails(tmp_path, home):
    repo = source_repo(tmp_path)
    spec = _spec(tmp_path, repo, [{"key": "A", "command": sh("exit 4")}])
    proc = dagmerge(home, "run", str(spec))
    assert proc.returncode == 1
    assert "A (command exited with status 4)" in proc.stdout


def test_spec_errors_are_one_line_and_a_non_zero_exit(tmp_path, home):
    repo = source_repo(tmp_path)
    spec = _spec(tmp_path, repo, [{"key": "A", "command": "true", "depends_on": ["B"]},
                                  {"key": "B", "command": "true", "depends_on": ["A"]}])
    proc = dagmerge(home, "submit", str(spec))
    assert proc.returncode == 2
    assert proc.stderr == "dagmerge: dependency cycle: A -> B -> A\n"

    status = dagmerge(home, "status", "1")
    assert status.returncode == 2 and "no ticket 1" in status.stderr


def test_revoke_token_gives_the_ticket_a_new_nonce_and_records_it(tmp_path, home):
    repo = source_repo(tmp_path)
    assert dagmerge(home, "submit", str(_spec(tmp_path, repo, [{"key": "A", "command": "true"}]))).returncode == 0
    database = sqlite3.connect(home / "dagmerge.sqlite3")

    def nonce() -> str:
        return database.execute("SELECT token_nonce FROM coordination_ticket WHERE id = 1").fetchone()[0]

    before = nonce()
    proc = dagmerge(home, "revoke-token", "1")

    assert proc.returncode == 0 and "ticket 1: token revoked" in proc.stdout
    assert len(before) == 32 and nonce() != before
    events = database.execute("SELECT payload FROM coordination_event WHERE kind = 'ticket.token_revoked'")
    assert [json.loads(payload) for (payload,) in events] == [{"by": "cli"}]
    unknown = dagmerge(home, "revoke-token", "99")
    assert unknown.returncode == 2 and unknown.stderr == "dagmerge: no ticket 99\n"


def test_bad_settings_stop_the_start_with_a_clear_message(tmp_path, home):
    env = {**os.environ, "DAGMERGE_HOME": str(home), "DAGMERGE_TASK_TIMEOUT": "soon"}
    proc = subprocess.run([sys.executable, "-m", "dagmerge_site.cli", "status", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "DAGMERGE_TASK_TIMEOUT='soon' is not a whole number" in proc.stderr


def test_spec_errors_in_yaml_name_the_line_and_nothing_is_written(tmp_path, home):
    repo = source_repo(tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"title: yaml\nrepository: {repo.path}\ntasks:\n  - key: A\n    command: \"true\"\n"
                    "  - key: B\n    depends_on: [A]\n    command: \"sh -c 'echo unclosed\"\n")
    proc = dagmerge(home, "submit", str(spec))
    assert proc.returncode == 2
    assert proc.stderr == (f"dagmerge: {spec}, line 8: task B: command cannot be split into words: "
                           f"No closing quotation in \"sh -c 'echo unclosed\"\n")
    assert dagmerge(home, "status", "1").returncode == 2  # no ticket was stored

    spec.write_text(f"title: empty\nrepository: {repo.path}\ntasks: []\n")
    proc = dagmerge(home, "submit", str(spec))
    assert proc.returncode == 2
    assert proc.stderr == f"dagmerge: {spec}, line 3: spec has no tasks: list at least one under 'tasks'\n"


def test_submit_says_how_many_tasks_and_prints_no_library_warning(tmp_path, home):
    repo = source_repo(tmp_path)
    one = _spec(tmp_path, repo, [{"key": "A", "command": "true"}])
    proc = dagmerge(home, "submit", str(one))
    assert proc.returncode == 0
    assert proc.stdout == "ticket 1 submitted: 1 task on ticket/1\n"
    assert proc.stderr == ""  # the embedded broker's kombu no longer warns "No hostname was supplied"
