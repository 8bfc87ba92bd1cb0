"""The Claude CLI runs under bubblewrap: the claude executor's agent and the agent resolver reach their own
folder and the network, not the worker's files, environment or processes.

The agent is a fake Claude CLI (tests/fakes/fake_claude.py) driven by the real SDK; it tries to read what
the worker holds — a marker in DAGMERGE_HOME, the secret key, the database, /proc of the worker and of
PID 1, its own environment — and reports what it saw through its recorder (on 127.0.0.1: the network is
the one thing the agent keeps). DAGMERGE_HOME lies outside /tmp (``exposed_home``), so it is hidden by
dagmerge and not merely by the sandbox's private /tmp.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from coordination.running import workspace
from merges.engine.agent_sandbox import AgentConfinement
from merges.engine.isolation import Isolation
from merges.engine.llm import Budget, LLMSettings, resolve_conflicts
from tests.fakes.fake_claude import install, recorded_calls
from tests.gitrepo import Repo, numbered_lines, replace_line
from tests.processes import matching
from tests.scenarios import run_ticket, sh, source_repo
from tests.security.conftest import CANARIES

MARKER = "CANARY-MARKER-IN-DAGMERGE-HOME"
PYTHON = (Path(sys.prefix), Path(sys.base_prefix))  # the fake CLI's interpreter, wherever the checkout lies


def probes(home: Path) -> list[str]:
    return [str(home / "marker.txt"), str(home / "secret_key"), str(home / "secrets" / "secret_key"),
            str(home / "dagmerge.sqlite3"), f"/proc/{os.getpid()}/environ", "/proc/1/environ",
            f"/proc/{os.getppid()}/environ"]


def leaked(text: str) -> list[str]:
    return [name for name, value in {**CANARIES, "MARKER": MARKER}.items()
            if value in text and name != "ANTHROPIC_API_KEY"]


def assert_confined(call: dict, home: Path) -> None:
    seen = json.dumps(call["probed"])
    assert leaked(seen) == [] and leaked(json.dumps(call["env"])) == [], seen
    assert os.getpid() not in call["pids"] and len(call["pids"]) < 10, "its own processes only"
    assert call["env"]["ANTHROPIC_API_KEY"] == CANARIES["ANTHROPIC_API_KEY"]  # the one secret it holds
    assert not any(value == "" for value in call["env"].values()), "the worker's variables are gone, not blanked"
    assert not Path(call["env"]["HOME"]).is_relative_to(home)
    assert call["env"]["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"  # the API its only host


@pytest.mark.django_db(transaction=True)
def test_the_claude_executor_agent_reaches_no_file_environment_or_process_of_the_worker(
        tmp_path, settings, canaries, exposed_home):
    (exposed_home / "marker.txt").write_text(MARKER)
    record = tmp_path / "calls.jsonl"
    settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake", {
        "variant": "write", "record": str(record), "files": {"login.py": "def login():\n    return True\n"},
        "probe": probes(exposed_home), "text": "Added login()."}))
    repo = source_repo(tmp_path)

    ticket = run_ticket(repo, [{"key": "A", "executor": "claude", "instructions": "Write a login function."}])

    assert ticket.status == "done", ticket.error
    a = ticket.tasks.get(key="A")
    assert repo.show(a.head_sha, "login.py") == "def login():\n    return True\n"  # its folder is writable
    [call] = recorded_calls(record)
    assert_confined(call, exposed_home)
    assert call["probed"][str(exposed_home / "marker.txt")] == "error: No such file or directory"
    # the task's checkout: the first slot of the repository's sandbox pool
    assert call["cwd"] == str(workspace.sandbox_pool_root(ticket.repository_id) / "slot-0" / "work")


@pytest.mark.django_db(transaction=True)
def test_the_agent_resolver_reaches_no_file_environment_or_process_of_the_worker(
        tmp_path, settings, canaries, exposed_home):
    (exposed_home / "marker.txt").write_text(MARKER)
    record = tmp_path / "calls.jsonl"
    body = "".join(f"    # {line}\n" for line in numbered_lines(30).splitlines())
    text = f"def settings():\n{body}    return 1\n"
    settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake", {
        "variant": "resolve", "record": str(record), "probe": probes(exposed_home),
        "files": {"config.py": replace_line(text, 10, "    B = 1\n    C = 1")},
        "text": "Kept both."}))
    settings.DAGMERGE_LLM_TIMEOUT = 30
    repo = source_repo(tmp_path, {"config.py": text})

    ticket = run_ticket(repo, [{"key": key, "command": sh(f"printf '%s' '{replace_line(text, 10, f'    {key} = 1')}' "
                                                          "> config.py")} for key in "BC"])

    [call] = recorded_calls(record)
    assert_confined(call, exposed_home)
    assert ticket.status in ("done", "awaiting_review"), ticket.error
    assert Path(call["cwd"]).is_relative_to(settings.DAGMERGE_WORKSPACE)  # the merge worktree, bound back


def test_the_api_key_is_on_no_host_command_line_while_the_agent_runs(tmp_path, monkeypatch):
    """bwrap's options hold the agent's environment; they go through a memfd, as for tasks."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARIES["ANTHROPIC_API_KEY"])
    worktree, paths = _conflicted(tmp_path)
    cli = install(tmp_path / "fake", {"variant": "hang"})
    settings = LLMSettings(cli_path=str(cli), timeout_s=4, max_retries=0,
                           confinement=AgentConfinement(Isolation.detect(), readonly=PYTHON))
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(matching(CANARIES["ANTHROPIC_API_KEY"]) + matching(str(cli)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outcome = resolve_conflicts(worktree, paths, [], settings, Budget())
    finally:
        done.set()
        watcher.join()
    assert "timed out" in outcome.error
    assert seen and not leaked(" ".join(seen)) and CANARIES["ANTHROPIC_API_KEY"] not in " ".join(seen)


@pytest.mark.parametrize("trusted", [False, True])
def test_without_bubblewrap_the_agent_is_refused_unless_trusted_code_mode_is_chosen(tmp_path, monkeypatch, trusted):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    worktree, paths = _conflicted(tmp_path)
    record = tmp_path / "calls.jsonl"
    cli = install(tmp_path / "fake", {"variant": "markers", "record": str(record)})
    missing = Isolation("trusted", "bwrap not found on PATH")
    settings = LLMSettings(cli_path=str(cli), max_retries=0, confinement=AgentConfinement(missing, trusted=trusted))

    outcome = resolve_conflicts(worktree, paths, [], settings, Budget())

    assert not outcome.resolved
    if trusted:
        assert len(recorded_calls(record)) == 1  # it ran, unconfined, as the operator chose
    else:
        assert recorded_calls(record) == []
        assert outcome.error == ("agent error: the agent runs only under bubblewrap and it is unavailable (bwrap not "
                                 "found on PATH); install bubblewrap, or set DAGMERGE_TRUSTED_CODE=1 to run it "
                                 "unconfined on this machine")


def _conflicted(tmp_path: Path) -> tuple[Path, list[str]]:
    repo = Repo(tmp_path / "repo")
    (repo.path / "notes.txt").write_text("<<<<<<< ours\na\n||||||| base\n=======\nb\n>>>>>>> theirs\n")
    return repo.path, ["notes.txt"]
