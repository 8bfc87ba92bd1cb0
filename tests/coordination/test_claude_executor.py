"""The claude executor through the real claude-agent-sdk, against a fake Claude CLI (tests/fakes/fake_claude.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from coordination.running.claude_executor import NO_API_KEY, run_claude_task
from merges.engine.llm import BUDGET_EXHAUSTED, Budget, LLMSettings
from tests.fakes.fake_claude import install, recorded_calls

API_KEY = "sk-ant-test-not-a-real-key-0123456789"
INSTRUCTIONS = "Add a health endpoint in src/app.py and note it in NOTES.md."
CONTEXT = {"task": {"key": "b", "title": "Health endpoint"}, "synthesis": {"from_a": "uses flask"}}
UNLIMITED = Budget()
FILES = {"src/app.py": "def health():\n    return 'ok'\n", "NOTES.md": "- /health\n"}


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)


@pytest.fixture
def workdir(tmp_path) -> Path:
    path = tmp_path / "sandbox"
    path.mkdir()
    return path


def _run(tmp_path: Path, workdir: Path, scenario: dict, *, timeout_s: float = 20.0, budget: Budget = UNLIMITED,
         **kwargs):
    record = tmp_path / "calls.jsonl"
    cli = install(tmp_path / "fake", {"record": str(record), **scenario})
    settings = LLMSettings(model="claude-test", max_turns=9, cli_path=str(cli))
    output: list[str] = []
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DAGMERGE_TASK": "b"}
    run = run_claude_task(INSTRUCTIONS, CONTEXT, workdir, env=env, timeout_s=timeout_s, settings=settings,
                          budget=budget, on_output=output.append, **kwargs)
    return run, output, recorded_calls(record)


def test_files_the_agent_writes_are_in_the_workdir_and_its_messages_reach_the_log(tmp_path, workdir):
    run, output, [call] = _run(tmp_path, workdir, {"variant": "write", "files": FILES,
                                                   "text": "Added /health.", "cost_usd": 0.02})

    assert {name: (workdir / name).read_text() for name in FILES} == FILES
    assert (run.process.exit_code, run.process.timed_out) == (0, False)
    assert (run.cost_usd, run.invocations, run.summary) == (pytest.approx(0.02), 1, "Added /health.")
    assert output[0] == "Starting on the task.\n"
    assert f"[Write] {workdir / 'src/app.py'}\n" in output
    assert output[-2:] == ["Added /health.\n", "[done] success, 4 turns, $0.0200\n"]
    assert run.process.output_tail == "".join(output)
    assert Path(call["cwd"]) == workdir
    assert INSTRUCTIONS in call["prompt"] and '"from_a": "uses flask"' in call["prompt"]
    argv = call["argv"]
    assert argv[argv.index("--allowedTools") + 1] == "Read,Edit,Write,Grep,Glob"
    assert argv[argv.index("--max-turns") + 1] == "9"


def test_bash_is_offered_only_when_allowed(tmp_path, workdir):
    _, _, [call] = _run(tmp_path, workdir, {"variant": "write", "files": {}}, allow_bash=True)

    assert call["argv"][call["argv"].index("--allowedTools") + 1] == "Read,Edit,Write,Grep,Glob,Bash"


def test_the_agent_sees_the_task_environment_not_the_workers_secrets(tmp_path, workdir, monkeypatch):
    monkeypatch.setenv("WORKER_DATABASE_PASSWORD", "hunter2")

    _, _, [call] = _run(tmp_path, workdir, {"variant": "write", "files": {}})

    assert call["env"]["WORKER_DATABASE_PASSWORD"] == ""
    assert (call["env"]["DAGMERGE_TASK"], call["env"]["HOME"]) == ("b", str(tmp_path))
    assert call["env"]["ANTHROPIC_API_KEY"] == API_KEY  # the CLI needs it; the prompt never carries it
    assert API_KEY not in call["prompt"]


def test_a_failing_agent_is_a_failed_process_with_the_reason_last(tmp_path, workdir):
    run, output, _ = _run(tmp_path, workdir, {"variant": "error", "cost_usd": 0.003})

    assert (run.process.exit_code, run.process.timed_out) == (1, False)
    assert output[-1] == "claude: API Error: 529 overloaded_error\n"
    assert run.process.output_tail.endswith(output[-1])
    assert (run.cost_usd, run.invocations) == (pytest.approx(0.003), 1)


def test_a_hung_agent_times_out_and_its_process_is_gone(tmp_path, workdir):
    run, output, [call] = _run(tmp_path, workdir, {"variant": "hang"}, timeout_s=0.5)

    assert (run.process.exit_code, run.process.timed_out) == (None, True)
    assert output[-1] == "claude: timed out after 0.5 s\n"
    with pytest.raises(ProcessLookupError):
        os.kill(call["pid"], 0)


def test_without_an_api_key_the_agent_is_not_started(tmp_path, workdir, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")

    run, output, calls = _run(tmp_path, workdir, {"variant": "write", "files": FILES})

    assert (run.process.exit_code, run.invocations, calls) == (2, 0, [])
    assert output == [f"claude: {NO_API_KEY}\n"]


def test_without_the_agents_extra_it_says_what_to_install(tmp_path, workdir, monkeypatch):
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # as if installed without [agents]

    run, output, calls = _run(tmp_path, workdir, {"variant": "write", "files": FILES})

    assert (run.process.exit_code, run.invocations, calls) == (2, 0, [])
    assert output == ["claude: the claude executor needs the agents extra: pip install 'dagmerge[agents]'\n"]


def test_an_exhausted_budget_does_not_start_the_agent(tmp_path, workdir):
    run, output, calls = _run(tmp_path, workdir, {"variant": "write", "files": FILES}, budget=Budget(usd=0.0))

    assert (run.process.exit_code, run.invocations, calls) == (2, 0, [])
    assert output == [f"claude: {BUDGET_EXHAUSTED}\n"]
    assert not (workdir / "NOTES.md").exists()
