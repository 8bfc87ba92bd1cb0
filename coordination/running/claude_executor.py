"""The ``claude`` executor: a Claude agent does a task's work in its sandbox's working directory.

The agent gets the task's instructions and context, edits files with its tools, and stops; dagmerge commits
what it left, as for a shell command. Its messages go to the task log as they come, one line each, and its
result comes back shaped like a command's (``ProcessResult``) with the cost on top.

The CLI runs on this machine with ``cwd`` = the sandbox's ``workdir``, so the sandbox must be local; with
``settings.confinement`` it runs under bubblewrap, reaching that folder and the network only.
claude-agent-sdk is the ``agents`` extra: without it a claude task ends, not started, with a line saying
what to install.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordination.running.sandboxes.base import OUTPUT_TAIL_BYTES, ProcessResult
from merges.engine.agent_sandbox import agent_environment
from merges.engine.extras import MissingExtra
from merges.engine.llm import (
    BUDGET_EXHAUSTED,
    AgentFailure,
    Budget,
    LLMSettings,
    agent_sdk,
    redact,
    run_agent,
)

EXECUTOR_TOOLS = ("Read", "Edit", "Write", "Grep", "Glob")
NO_API_KEY = "no ANTHROPIC_API_KEY configured: the claude executor cannot run"


@dataclass
class ClaudeRun:
    process: ProcessResult
    cost_usd: float = 0.0
    invocations: int = 0
    summary: str = ""  # the agent's final text


def run_claude_task(instructions: str, context: Mapping[str, Any], workdir: Path, *, env: Mapping[str, str],
                    timeout_s: float, settings: LLMSettings, budget: Budget, allow_bash: bool = False,
                    on_output: Callable[[str], None] | None = None) -> ClaudeRun:
    """Run the agent once in ``workdir``; exit code 0 when it finished, 1 when it failed, 2 when not started.

    ``env`` is the task's environment (as a shell command gets it); ``timeout_s`` bounds the whole session.
    """
    try:
        sdk = agent_sdk("the claude executor")
    except MissingExtra as missing:  # first: whatever else is set, it cannot run without the package
        return _not_started(str(missing), on_output)
    if not settings.api_key_present:
        return _not_started(NO_API_KEY, on_output)
    if not budget.allows():
        return _not_started(BUDGET_EXHAUSTED, on_output)
    lines: list[str] = []

    def emit(line: str) -> None:
        text = redact(line) + "\n"
        lines.append(text)
        if on_output:
            on_output(text)

    tools = [*EXECUTOR_TOOLS, "Bash"] if allow_bash else list(EXECUTOR_TOOLS)
    options = sdk.ClaudeAgentOptions(
        cwd=str(workdir), tools=tools, allowed_tools=tools, permission_mode="acceptEdits",
        max_turns=settings.max_turns, max_budget_usd=budget.usd_left(0.0), model=settings.model,
        cli_path=settings.cli_path, env=agent_environment(env),
        setting_sources=[],  # the repository's .claude/settings.json is task input, not dagmerge's config
        system_prompt={"type": "preset", "preset": "claude_code",
                       "append": "You are doing one task of a larger ticket for dagmerge. Work only in the "
                                 "current directory and do not commit: dagmerge commits what you leave."},
    )
    started = time.monotonic()
    try:
        run = run_agent(task_prompt(instructions, context), options, timeout_s, on_line=emit,
                        confinement=settings.confinement)
    except AgentFailure as failure:
        emit(f"claude: {failure}")
        process = ProcessResult(None if failure.timed_out else 1, _tail(lines), failure.timed_out,
                                time.monotonic() - started)
        return ClaudeRun(process, failure.run.cost_usd, 1, redact(failure.run.final_text))
    process = ProcessResult(0, _tail(lines), False, time.monotonic() - started)
    return ClaudeRun(process, run.cost_usd, 1, redact(run.final_text))


def task_prompt(instructions: str, context: Mapping[str, Any]) -> str:
    return "\n".join([
        instructions.strip(),
        "",
        "## Context",
        "The ticket, this task, its parents' results and the synthesis of merged work, as JSON:",
        "```json",
        json.dumps(context, indent=2, default=str),
        "```",
        "",
        "When done, end with a short summary of what you changed.",
    ])


def _not_started(reason: str, on_output: Callable[[str], None] | None) -> ClaudeRun:
    line = f"claude: {reason}\n"
    if on_output:
        on_output(line)
    return ClaudeRun(ProcessResult(2, line, False, 0.0))


def _tail(lines: list[str]) -> str:
    return "".join(lines)[-OUTPUT_TAIL_BYTES:]
