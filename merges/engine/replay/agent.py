"""The agent tier in replay: what the deterministic tiers left, given to the agent resolver as a ticket would.

Each file with open hunks is written, markers and all (the hunks the resolvers settled already applied),
into a throwaway git work tree, and ``resolve_conflicts`` runs there with the two commits' subjects as the
sides' intents -- the same call, checks and budget as the ladder inside a ticket. The answer is cut back
into the open hunks and each is judged like a resolver's (exact, layout, equivalent); an answer that also
changed text outside the hunks is judged as a whole file. Cost and time are counted per open hunk.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from merges.engine.alignment import split_proposal
from merges.engine.conflicts import parse_hunks
from merges.engine.git import init_repository
from merges.engine.llm import Budget, LLMSettings, SideIntent, resolve_conflicts
from merges.engine.replay.judging import judge, verdict
from merges.engine.replay.report import AgentTally, ReplayReport, Verdict
from merges.engine.resolvers.ladder import FileResolution, HunkOutcome
from merges.engine.resolvers.structured import canonical_form

AGENT = "llm"


@dataclass
class AgentReplay:
    """How the agent tier runs in a replay: ``limit`` files at most, ``max_usd`` in all (None: no limit)."""

    settings: LLMSettings
    limit: int | None = None
    max_usd: float | None = None
    tally: AgentTally = field(default_factory=AgentTally)

    @property
    def done(self) -> bool:
        over_files = self.limit is not None and self.tally.files >= self.limit
        over_usd = self.max_usd is not None and self.tally.cost_usd >= self.max_usd
        return over_files or over_usd

    def budget(self) -> Budget:
        return Budget(usd=None if self.max_usd is None else max(self.max_usd - self.tally.cost_usd, 0.0))


def settle_rest(agent: AgentReplay, report: ReplayReport, resolution: FileResolution, truth: str | None,
                intents: Callable[[], list[SideIntent]]) -> None:
    """Give the hunks ``resolution`` left open to the agent, and judge what it answers against ``truth``."""
    if resolution.reason or resolution.settled or agent.done:
        return
    if truth is None:
        report.notes["files left open with no author's text (not given to the agent)"] += 1
        return
    tally = agent.tally
    rendered = resolution.render()
    tally.files += 1
    tally.hunks += len(resolution.outcomes) - resolution.resolved_hunks
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dagmerge-replay-agent-") as scratch:
        worktree = Path(scratch) / "work"
        git = init_repository(worktree)
        target = worktree / resolution.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(rendered)
        git.run("add", "-A")
        git.run("commit", "-q", "-m", "replay: the conflict as the resolvers left it")
        outcome = resolve_conflicts(worktree, [resolution.path], intents(), agent.settings, agent.budget())
    tally.seconds += time.monotonic() - started
    tally.invocations += outcome.invocations
    tally.cost_usd += outcome.cost_usd
    if not outcome.resolved:
        tally.errors[outcome.error.split(":")[0]] += 1
        return
    for found in _verdicts(resolution, rendered, outcome.files[resolution.path], truth):
        tally.score.add(found)


def _verdicts(resolution: FileResolution, rendered: str, answer: str, truth: str) -> list[Verdict | None]:
    """One verdict per open hunk: judged hunk by hunk when the answer only replaced the hunks, else the whole
    answer against the whole file, for each."""
    open_hunks = [i for i, o in enumerate(resolution.outcomes) if not o.resolver]
    pieces = split_proposal(rendered, parse_hunks(rendered, resolution.marker_size), answer)
    if pieces is None:
        whole = verdict(answer.split("\n"), truth.split("\n"),
                        lambda: _same_file(resolution.path, answer, truth))
        return [whole] * len(open_hunks)
    outcomes = list(resolution.outcomes)
    for index, piece in zip(open_hunks, pieces, strict=True):
        outcomes[index] = HunkOutcome(outcomes[index].hunk, AGENT, piece)
    answered = FileResolution(resolution.path, resolution.rule_set, outcomes, merged_lines=resolution.merged_lines,
                              marker_size=resolution.marker_size)
    verdicts = judge(answered, truth)
    return [verdicts[index] for index in open_hunks]


def _same_file(path: str, answer: str, truth: str) -> bool | None:
    form = canonical_form(path, truth)
    return None if form is None else canonical_form(path, answer) == form
