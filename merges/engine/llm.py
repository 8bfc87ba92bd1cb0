"""The LLM tier of the conflict ladder: a Claude agent edits the conflicted files in a merge worktree.

The agent runs through claude-agent-sdk (the ``agents`` extra, imported when an agent runs), which spawns
the Claude Code CLI. Nothing here trusts the agent: after it stops, the conflicted files must be free of
markers and no other file may have changed, or the conflict goes to a person. It runs only with an API key,
within the ticket's budget, under a timeout, and retries only what may pass on a second try (a crashed or
overloaded CLI), never a bad resolution.

Free of Django: the caller passes settings, budget and the sides' intents.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from merges.engine.agent_checks import check_resolution, worktree_state
from merges.engine.agent_checks import restore as _restore
from merges.engine.agent_sandbox import AgentConfinement, AgentRefused, agent_environment, confined
from merges.engine.extras import AGENT_SDK, MissingExtra, install_hint, load
from merges.engine.processes import process_environment

if TYPE_CHECKING:  # the SDK is the agents extra: imported when an agent runs, not with this module
    from claude_agent_sdk import ClaudeAgentOptions, ResultError, ResultMessage

log = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
NO_API_KEY = f"no {API_KEY_ENV} configured: the conflict goes to a person"
NO_AGENT_SDK = (f"the agent tier is unavailable: claude-agent-sdk is not installed ({install_hint()}); "
                "the conflict goes to a person")
BUDGET_EXHAUSTED = "LLM budget exhausted"
RESOLVER_TOOLS = ("Read", "Edit", "Write", "Grep", "Glob")
# Result subtypes a second try would only repeat: the same limits apply to it.
FINAL_RESULT_SUBTYPES = ("error_max_turns", "error_max_budget_usd")
PROMPT_FIELD_CHARS = 4000
STDERR_LINES_KEPT = 20


def _api_key_in_environment() -> bool:
    return bool(os.environ.get(API_KEY_ENV))


def agent_sdk(feature: str = "the agent tier") -> ModuleType:
    """claude_agent_sdk, imported on first use; MissingExtra (saying what to install) without the extra."""
    return load(AGENT_SDK, feature)


@dataclass(frozen=True)
class LLMSettings:
    """How the agent runs. ``cli_path`` None: the CLI bundled with claude-agent-sdk."""

    model: str | None = None
    max_turns: int = 30
    timeout_s: float = 600.0
    max_retries: int = 2
    backoff_base_s: float = 2.0
    cli_path: str | None = None
    api_key_present: bool = field(default_factory=_api_key_in_environment)
    confinement: AgentConfinement | None = None  # None: the CLI runs on the worker as it is (the engine alone)


@dataclass(frozen=True)
class Budget:
    """What the ticket may still spend on the LLM; None is no limit."""

    invocations: int | None = None
    usd: float | None = None

    def allows(self, invocations_used: int = 0, usd_used: float = 0.0) -> bool:
        return (self.invocations is None or invocations_used < self.invocations) and (
            self.usd is None or usd_used < self.usd)

    def usd_left(self, usd_used: float) -> float | None:
        return None if self.usd is None else max(self.usd - usd_used, 0.0)


@dataclass(frozen=True)
class SideIntent:
    """What one side of the merge meant: the task that made it and what it reported."""

    task_key: str
    title: str
    instructions: str = ""
    result_summary: str = ""
    diff_stat: str = ""
    label: str = ""  # the label its conflict markers carry, e.g. the branch name


@dataclass
class LLMOutcome:
    resolved: bool
    files: dict[str, str] = field(default_factory=dict)  # path -> resolved text, only when resolved
    rationale: str = ""
    invocations: int = 0
    cost_usd: float = 0.0
    duration_ms: int = 0
    error: str = ""


# -- one agent session ----------------------------------------------------------------------------


@dataclass
class AgentRun:
    """What one session reported, filled in as messages arrive, so a timeout keeps what had come."""

    text: str = ""  # the last assistant text: the agent's final word
    cost_usd: float = 0.0
    result: ResultMessage | None = None
    stderr: list[str] = field(default_factory=list)

    @property
    def final_text(self) -> str:
        return self.text or (self.result.result or "" if self.result else "")


class AgentFailure(Exception):
    """A session that ended without a usable result. ``transient``: another try may succeed."""

    def __init__(self, message: str, run: AgentRun, transient: bool, timed_out: bool = False):
        super().__init__(message)
        self.run = run
        self.transient = transient
        self.timed_out = timed_out


def run_agent(prompt: str, options: ClaudeAgentOptions, timeout_s: float,
              on_line: Callable[[str], None] | None = None, confinement: AgentConfinement | None = None) -> AgentRun:
    """Run one agent session to its result, in a fresh event loop; raise AgentFailure otherwise.

    With ``confinement`` the CLI runs under bubblewrap (``agent_sandbox``). At the timeout the SDK closes the
    CLI: stdin EOF, 5 s grace, SIGTERM, SIGKILL; the wait here covers it, so no CLI process outlives the call.
    """
    sdk = agent_sdk()
    run = AgentRun()
    options = replace(options, stderr=lambda line: _keep_tail(run.stderr, line))
    try:
        with confined(options, confinement) as options:
            asyncio.run(_session(prompt, options, run, on_line, timeout_s))
    except AgentRefused as exc:
        raise AgentFailure(str(exc), run, transient=False) from None
    except TimeoutError:
        raise AgentFailure(f"timed out after {timeout_s:g} s", run, transient=False, timed_out=True) from None
    except sdk.CLINotFoundError as exc:
        raise AgentFailure(f"Claude Code CLI not found: {exc}", run, transient=False) from None
    except sdk.ResultError as exc:
        raise AgentFailure(_result_error_text(exc), run,
                           transient=exc.subtype not in FINAL_RESULT_SUBTYPES) from None
    except sdk.ProcessError as exc:
        detail = f": {run.stderr[-1]}" if run.stderr else ""
        raise AgentFailure(f"the Claude CLI exited with status {exc.exit_code}{detail}", run,
                           transient=True) from None
    except Exception as exc:  # CLIConnectionError, CLIJSONDecodeError, bare "Control request timeout: ..."
        raise AgentFailure(f"{type(exc).__name__}: {exc}", run, transient=True) from None
    if run.result is None:
        raise AgentFailure("the Claude CLI ended without a result", run, transient=True)
    if run.result.is_error:
        raise AgentFailure(_result_error_text(run.result), run,
                           transient=run.result.subtype not in FINAL_RESULT_SUBTYPES)
    return run


async def _session(prompt: str, options: ClaudeAgentOptions, run: AgentRun,
                   on_line: Callable[[str], None] | None, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(_consume(prompt, options, run, on_line), timeout_s)
    finally:
        # The SDK's subprocess transport can be left in a reference cycle: collected here it closes on this
        # loop. Collected later, its __del__ finds the loop closed and raises inside whatever code the
        # collection interrupted (seen inside ast.parse, which CPython 3.11 then fails with a SystemError).
        gc.collect()
        await asyncio.sleep(0)


async def _consume(prompt: str, options: ClaudeAgentOptions, run: AgentRun,
                   on_line: Callable[[str], None] | None) -> None:
    sdk = agent_sdk()
    async for message in sdk.query(prompt=prompt, options=options):
        if isinstance(message, sdk.AssistantMessage):
            texts = [block.text for block in message.content if isinstance(block, sdk.TextBlock)]
            if texts:
                run.text = "\n".join(texts).strip()
        elif isinstance(message, sdk.ResultMessage):
            run.result = message
            run.cost_usd += message.total_cost_usd or 0.0
        if on_line:
            for line in message_lines(message):
                on_line(line)


def message_lines(message: Any) -> list[str]:
    """One readable line per assistant text, tool use, tool error and result, for a live log."""
    sdk = agent_sdk()
    lines: list[str] = []
    if isinstance(message, sdk.AssistantMessage):
        for block in message.content:
            if isinstance(block, sdk.TextBlock) and block.text.strip():
                lines.append(block.text.strip())
            elif isinstance(block, sdk.ToolUseBlock):
                lines.append(f"[{block.name}] {_tool_subject(block.input)}".rstrip())
    elif isinstance(message, sdk.UserMessage) and isinstance(message.content, list):
        for block in message.content:
            if isinstance(block, sdk.ToolResultBlock) and block.is_error:
                lines.append(f"[tool error] {str(block.content)[:300]}")
    elif isinstance(message, sdk.ResultMessage):
        cost = f", ${message.total_cost_usd:.4f}" if message.total_cost_usd is not None else ""
        state = "error" if message.is_error else "done"
        lines.append(f"[{state}] {message.subtype}, {message.num_turns} turns{cost}")
    return lines


def _tool_subject(arguments: dict[str, Any]) -> str:
    for key in ("file_path", "path", "pattern", "command", "url"):
        value = arguments.get(key)
        if isinstance(value, str):
            return value[:200]
    return ""


def _result_error_text(result: ResultMessage | ResultError) -> str:
    errors = [e for e in result.errors or [] if isinstance(e, str) and e.strip()]
    return "; ".join(errors) or (result.result or "").strip() or result.subtype or "unknown error"


def _keep_tail(lines: list[str], line: str) -> None:
    lines.append(line)
    del lines[:-STDERR_LINES_KEPT]


def redact(text: str) -> str:
    """Never let the API key reach a log, an error or a result."""
    key = os.environ.get(API_KEY_ENV)
    return text.replace(key, "[redacted]") if key and len(key) >= 8 else text


# -- resolving conflicts --------------------------------------------------------------------------


def agent_unavailable(settings: LLMSettings | None) -> str:
    """Why the agent tier cannot run (no API key, or the agents extra not installed); "" when it can."""
    if settings is None or not settings.api_key_present:
        return NO_API_KEY
    try:
        agent_sdk()
    except MissingExtra:
        return NO_AGENT_SDK
    return ""


def resolve_conflicts(worktree: Path, paths: Sequence[str], sides: Sequence[SideIntent], settings: LLMSettings,
                      budget: Budget = Budget(), hint: str = "") -> LLMOutcome:
    """Let an agent settle ``paths`` (text files with conflict markers in ``worktree``, a git work tree).

    When not resolved, the conflicted files are put back as they were given (with their markers); files the
    agent changed outside them are named in the error, not restored.
    """
    unavailable = agent_unavailable(settings)
    if unavailable:
        return LLMOutcome(False, error=unavailable)
    if not budget.allows():
        return LLMOutcome(False, error=BUDGET_EXHAUSTED)
    started = time.monotonic()
    originals = {path: (worktree / path).read_bytes() for path in paths}
    before = worktree_state(worktree)
    outcome = LLMOutcome(False)
    run = _run_with_retries(worktree, resolution_prompt(paths, sides, hint), settings, budget, originals, outcome)
    if run is not None:
        outcome.rationale = redact(run.final_text)
        problems = check_resolution(worktree, paths, before)
        if problems:
            outcome.error = "; ".join(problems)
        else:
            outcome.files = {path: (worktree / path).read_text(encoding="utf-8") for path in paths}
            outcome.resolved = True
    if not outcome.resolved:
        _restore(worktree, originals)
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _run_with_retries(worktree: Path, prompt: str, settings: LLMSettings, budget: Budget,
                      originals: dict[str, bytes], outcome: LLMOutcome) -> AgentRun | None:
    """The first session that ends in a result; None (and ``outcome.error``) when none did.

    Each try counts against the budget; a retry starts from the files as given, after
    ``backoff_base_s * 2**(n-1)`` seconds.
    """
    for attempt in range(1, settings.max_retries + 2):
        if attempt > 1:
            if not budget.allows(outcome.invocations, outcome.cost_usd):
                outcome.error = f"{BUDGET_EXHAUSTED} after {attempt - 1} attempts; last: {outcome.error}"
                return None
            _restore(worktree, originals)
            time.sleep(settings.backoff_base_s * 2 ** (attempt - 2))
        outcome.invocations += 1
        options = _resolver_options(worktree, settings, budget, outcome.cost_usd)
        try:
            run = run_agent(prompt, options, settings.timeout_s, confinement=settings.confinement,
                            on_line=lambda line: log.debug("llm %s: %s", worktree.name, redact(line)))
        except AgentFailure as failure:
            outcome.cost_usd += failure.run.cost_usd
            outcome.error = redact(str(failure))
            if failure.timed_out:
                return None  # a hung agent gets no second timeout's worth of waiting
            if not failure.transient or attempt > settings.max_retries:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                outcome.error = f"agent error{tries}: {outcome.error}"
                return None
            log.warning("llm resolution in %s: attempt %d failed, retrying: %s", worktree, attempt, outcome.error)
            continue
        outcome.cost_usd += run.cost_usd
        return run
    return None


def _resolver_options(worktree: Path, settings: LLMSettings, budget: Budget, usd_used: float) -> ClaudeAgentOptions:
    options: ClaudeAgentOptions = agent_sdk().ClaudeAgentOptions(  # the SDK is loaded on use: a ModuleType
        cwd=str(worktree),
        tools=list(RESOLVER_TOOLS),  # the only tools it has at all, not merely those it may use unasked
        allowed_tools=list(RESOLVER_TOOLS),
        permission_mode="acceptEdits",
        max_turns=settings.max_turns,
        max_budget_usd=budget.usd_left(usd_used),
        model=settings.model,
        cli_path=settings.cli_path,
        env=agent_environment(process_environment({"HOME": os.environ["HOME"]} if "HOME" in os.environ else {})),
        # The worktree holds someone else's repository: its .claude/settings.json could add hooks that run.
        setting_sources=[],
        system_prompt={"type": "preset", "preset": "claude_code",
                       "append": "You are settling git merge conflicts for dagmerge. Follow the rules in the "
                                 "request exactly; a person reviews what you leave."},
    )
    return options


def resolution_prompt(paths: Sequence[str], sides: Sequence[SideIntent], hint: str = "") -> str:
    parts = [
        "Two or more tasks of one ticket changed the same lines of this repository (your working directory). "
        "Both sides' work is meant to land. The conflicted files below contain diff3-style conflict markers: "
        "`<<<<<<< ours`, `||||||| base`, `=======`, `>>>>>>> theirs`.",
        "",
        "## What each side meant",
    ]
    for side in sides:
        heading = f"### {side.title} (task `{side.task_key}`"
        parts.append(heading + (f", markers labelled `{side.label}`)" if side.label else ")"))
        for name, value in (("Instructions", side.instructions), ("Result summary", side.result_summary),
                            ("Diff stat", side.diff_stat)):
            if value.strip():
                parts += [f"{name}:", _clip(value.strip()), ""]
    parts += ["## Conflicted files", *[f"- {path}" for path in paths], ""]
    if hint.strip():
        parts += ["## A reviewer's hint", _clip(hint.strip()), ""]
    parts += [
        "## Rules",
        "- Edit only the conflicted files listed above: do not create, delete or change any other file.",
        "- Leave no conflict markers: every `<<<<<<<`, `|||||||`, `=======` and `>>>>>>>` line must go.",
        "- Keep what each side meant: combine both changes where they fit together; where they contradict, "
        "choose the one that serves both intents best.",
        "- End with a short rationale (a few sentences): what you kept from each side and why.",
    ]
    return "\n".join(parts)


def _clip(text: str) -> str:
    return text if len(text) <= PROMPT_FIELD_CHARS else text[:PROMPT_FIELD_CHARS] + "\n[... cut]"


# -- checking what the agent left -----------------------------------------------------------------
