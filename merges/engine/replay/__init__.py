"""Replaying a repository's history through the resolvers: how often they settle a hunk, how often rightly.

Two modes (``modes``):

- ``history``: every two-parent merge is merged again with ``merge-tree``; a hunk a resolver settled is
  judged against the merge commit's text at that place. History-safe rules.
- ``parallel``: complementary conflicts made from real code. For consecutive commits C1, C2 changing a
  file, with P the parent of C1, C2's change is transplanted onto P (each C1→C2 edit mapped through the
  P↔C1 alignment, zero context; pairs where C2 edits lines C1 introduced are dropped), then P ← C1 and
  the transplant are merged. Where git conflicts, the author's C2 file is the right answer.

Each settled hunk is judged three ways (``judging``): exact, layout, equivalent; and reported per resolver,
per language and per order rule of the structured tier, with each rule also measured by leaving it out.
With the agent tier (``agent``), what the deterministic tiers leave goes to the agent resolver as well.

Nothing is written into the repository.
"""

from __future__ import annotations

import time
from pathlib import Path

from merges.engine.replay.agent import AgentReplay
from merges.engine.replay.modes import replay_history, replay_parallel, scratch_objects
from merges.engine.replay.report import ReplayReport
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE

MODES = ("history", "parallel")
DEFAULT_RULES = {"history": HISTORY_SAFE, "parallel": COMPLEMENTARY}


def replay(repo: str | Path, mode: str, limit: int | None = None, since: str | None = None,
           rule_set: str | None = None, at: str = "HEAD", agent: AgentReplay | None = None) -> ReplayReport:
    """Measure the resolvers on ``repo``'s history from ``at`` back: ``limit`` merges or commit pairs -- or,
    with the agent tier, until ``agent.limit`` files went to the agent."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    started = time.monotonic()
    with scratch_objects(Path(repo)) as git:
        head = git.rev_parse(at)
        if head is None:
            raise ValueError(f"{repo}: no commit {at!r}")
        report = ReplayReport(mode, rule_set or DEFAULT_RULES[mode], str(repo), head)
        run = replay_history if mode == "history" else replay_parallel
        run(git, report, None if agent is not None else limit, since, head, agent)
    if agent is not None:
        report.agent = agent.tally
    report.seconds = time.monotonic() - started
    return report
