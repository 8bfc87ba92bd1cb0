"""The LLM resolver through the real claude-agent-sdk, against a fake Claude CLI (tests/fakes/fake_claude.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from merges.engine.agent_checks import marker_lines
from merges.engine.llm import (
    BUDGET_EXHAUSTED,
    NO_AGENT_SDK,
    NO_API_KEY,
    Budget,
    LLMSettings,
    SideIntent,
    resolve_conflicts,
)
from tests.fakes.fake_claude import install, recorded_calls
from tests.gitrepo import Repo, numbered_lines, replace_line

API_KEY = "sk-ant-test-not-a-real-key-0123456789"
BASE = numbered_lines(60)
RESOLVED = replace_line(BASE, 50, "timeout = 30\nretries = 5")
SIDES = [
    SideIntent("b", "Raise the timeout", "Set the timeout on line 50 to 30 seconds.", "timeout is now 30",
               "config.py | 2 +-", label="ours"),
    SideIntent("c", "Add retries", "Configure 5 retries where line 50 is.", "retries added",
               "config.py | 2 +-", label="theirs"),
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)


@pytest.fixture
def worktree(tmp_path) -> Path:
    """A work tree in the middle of a merge: config.py has diff3 conflict markers, README.md is clean."""
    repo = Repo(tmp_path / "repo")
    base = repo.commit({"config.py": BASE, "README.md": "# project\n"}, "base")
    repo.branch("theirs", base)
    repo.commit({"config.py": replace_line(BASE, 50, "retries = 5")}, "c")
    repo.checkout("main")
    repo.commit({"config.py": replace_line(BASE, 50, "timeout = 30")}, "b")
    repo.git.run("-c", "merge.conflictStyle=diff3", "merge", "-q", "theirs", ok=(1,))
    assert marker_lines((repo.path / "config.py").read_text())
    return repo.path


def _settings(tmp_path: Path, scenario: dict, **overrides) -> tuple[LLMSettings, Path]:
    record = tmp_path / "calls.jsonl"
    cli = install(tmp_path / "fake", {"record": str(record), **scenario})
    values = {"model": "claude-test", "max_turns": 7, "timeout_s": 20.0, "max_retries": 2, "backoff_base_s": 0.01,
              "cli_path": str(cli), **overrides}
    return LLMSettings(**values), record


def test_agent_resolves_the_conflict_with_a_rationale_and_its_cost_counted(tmp_path, worktree):
    settings, record = _settings(tmp_path, {"variant": "resolve", "files": {"config.py": RESOLVED},
                                            "text": "Kept the timeout and the retries.", "cost_usd": 0.0123})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings, hint="keep both settings")

    assert outcome.error == ""
    assert outcome.resolved
    assert outcome.files == {"config.py": RESOLVED}
    assert (worktree / "config.py").read_text() == RESOLVED
    assert outcome.rationale == "Kept the timeout and the retries."
    assert (outcome.invocations, outcome.cost_usd) == (1, pytest.approx(0.0123))
    assert outcome.duration_ms > 0
    [call] = recorded_calls(record)
    assert Path(call["cwd"]) == worktree
    for side in SIDES:
        for text in (side.title, side.instructions, side.result_summary, side.diff_stat, side.task_key):
            assert text in call["prompt"]
    assert "- config.py" in call["prompt"] and "keep both settings" in call["prompt"]
    assert API_KEY not in call["prompt"]
    argv = call["argv"]
    assert argv[argv.index("--allowedTools") + 1] == "Read,Edit,Write,Grep,Glob"
    assert argv[argv.index("--tools") + 1] == "Read,Edit,Write,Grep,Glob"
    assert argv[argv.index("--permission-mode") + 1] == "acceptEdits"
    assert argv[argv.index("--max-turns") + 1] == "7"
    assert argv[argv.index("--model") + 1] == "claude-test"
    assert "--setting-sources=" in argv


def test_markers_left_by_the_agent_mean_not_resolved(tmp_path, worktree):
    given = (worktree / "config.py").read_text()
    settings, _ = _settings(tmp_path, {"variant": "markers", "text": "All done."})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert not outcome.resolved
    assert outcome.error == "markers left in config.py"
    assert outcome.files == {}
    assert outcome.rationale == "All done."
    assert outcome.invocations == 1  # a bad resolution is not retried
    assert (worktree / "config.py").read_text() == given


def test_agent_editing_files_outside_the_conflict_means_not_resolved(tmp_path, worktree):
    settings, _ = _settings(tmp_path, {"variant": "outside", "files": {"config.py": RESOLVED},
                                       "outside": {"README.md": "# rewritten\n", "notes/new.txt": "x\n"}})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert not outcome.resolved
    assert outcome.error == "edited files outside the conflict: README.md, notes/new.txt"
    assert marker_lines((worktree / "config.py").read_text())  # put back as given


def test_a_change_to_a_file_that_was_already_dirty_is_caught(tmp_path, worktree):
    (worktree / "scratch.txt").write_text("left by the merge\n")
    settings, _ = _settings(tmp_path, {"variant": "outside", "files": {"config.py": RESOLVED},
                                       "outside": {"scratch.txt": "rewritten\n"}})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert outcome.error == "edited files outside the conflict: scratch.txt"


@pytest.mark.parametrize("exit_code", [1, 0], ids=["exits-1", "exits-0"])
def test_agent_errors_are_retried_with_backoff_then_fail_with_a_clear_error(tmp_path, worktree, exit_code):
    settings, record = _settings(tmp_path, {"variant": "error", "cost_usd": 0.002, "exit_code": exit_code},
                                 max_retries=2, backoff_base_s=0.2)

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert not outcome.resolved
    assert outcome.error == "agent error after 3 attempts: API Error: 529 overloaded_error"
    assert outcome.invocations == 3
    assert outcome.cost_usd == pytest.approx(0.006)
    times = [call["time"] for call in recorded_calls(record)]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # exponential: base, then 2 x base


def test_a_crashed_cli_is_retried_and_the_next_try_can_resolve(tmp_path, worktree):
    settings, record = _settings(tmp_path, {"sequence": ["error", "resolve"], "emit_result": False,
                                            "files": {"config.py": RESOLVED}})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert outcome.resolved, outcome.error
    assert outcome.invocations == 2 and len(recorded_calls(record)) == 2


def test_a_hung_agent_times_out_and_its_process_is_gone(tmp_path, worktree):
    # long enough for the fake CLI to start and record itself on a loaded machine, which 0.5 s was not
    settings, record = _settings(tmp_path, {"variant": "hang"}, timeout_s=4)

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert not outcome.resolved
    assert outcome.error == "timed out after 4 s"
    assert outcome.invocations == 1  # not retried: another timeout's worth of waiting would follow
    [call] = recorded_calls(record)
    with pytest.raises(ProcessLookupError):
        os.kill(call["pid"], 0)


def test_without_an_api_key_the_agent_is_not_started(tmp_path, worktree, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    settings, record = _settings(tmp_path, {"variant": "resolve", "files": {"config.py": RESOLVED}})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert (outcome.resolved, outcome.error, outcome.invocations) == (False, NO_API_KEY, 0)
    assert recorded_calls(record) == []


def test_without_the_agents_extra_the_tier_is_unavailable_and_the_files_are_left_as_given(tmp_path, worktree,
                                                                                          monkeypatch):
    settings, record = _settings(tmp_path, {"variant": "resolve", "files": {"config.py": RESOLVED}})
    given = (worktree / "config.py").read_text()
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # as if installed without [agents]

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings)

    assert (outcome.resolved, outcome.error, outcome.invocations) == (False, NO_AGENT_SDK, 0)
    assert NO_AGENT_SDK.startswith("the agent tier is unavailable") and "dagmerge[agents]" in NO_AGENT_SDK
    assert (worktree / "config.py").read_text() == given
    assert recorded_calls(record) == []


@pytest.mark.parametrize("budget", [Budget(invocations=0), Budget(usd=0.0)], ids=["invocations", "usd"])
def test_an_exhausted_budget_does_not_start_the_agent(tmp_path, worktree, budget):
    settings, record = _settings(tmp_path, {"variant": "resolve", "files": {"config.py": RESOLVED}})

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings, budget)

    assert (outcome.resolved, outcome.error, outcome.invocations) == (False, BUDGET_EXHAUSTED, 0)
    assert recorded_calls(record) == []


def test_the_budget_stops_retries(tmp_path, worktree):
    settings, record = _settings(tmp_path, {"variant": "error"}, max_retries=5)

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings, Budget(invocations=2))

    assert outcome.invocations == 2 and len(recorded_calls(record)) == 2
    assert outcome.error.startswith(f"{BUDGET_EXHAUSTED} after 2 attempts")


def test_each_try_caps_the_cli_at_the_usd_left_and_stops_when_none_is(tmp_path, worktree):
    settings, record = _settings(tmp_path, {"variant": "error", "cost_usd": 0.2}, max_retries=5)

    outcome = resolve_conflicts(worktree, ["config.py"], SIDES, settings, Budget(usd=0.5))

    caps = [float(call["argv"][call["argv"].index("--max-budget-usd") + 1]) for call in recorded_calls(record)]
    assert caps == [pytest.approx(0.5), pytest.approx(0.3), pytest.approx(0.1)]
    assert outcome.invocations == 3 and outcome.cost_usd == pytest.approx(0.6)
    assert outcome.error.startswith(f"{BUDGET_EXHAUSTED} after 3 attempts")


def test_marker_lines_find_conflict_markers_but_not_a_bare_underline():
    assert marker_lines("Title\n=======\ntext\n") == []
    assert marker_lines("a\n<<<<<<< ours\nx\n||||||| base\n=======\ny\n>>>>>>> theirs\n") == [2, 4, 7]
