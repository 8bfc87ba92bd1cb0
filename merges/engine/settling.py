"""The conflict ladder after git: deterministic resolvers, then an agent, then a person.

Each tier only takes what the one below left; every hunk records which tier settled it and why. Nothing
a machine proposed is kept without validation, and the policy (threshold, review policy, budget) decides
when a person must look instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merges.engine.alignment import split_proposal
from merges.engine.conflicts import TEXT_KINDS, ConflictDetail
from merges.engine.git import Git, MergeTreeResult
from merges.engine.llm import (
    BUDGET_EXHAUSTED,
    Budget,
    LLMSettings,
    SideIntent,
    agent_unavailable,
    resolve_conflicts,
)
from merges.engine.resolvers.ladder import RECORDED, FileResolution, resolve_file
from merges.engine.resolvers.recorded import ResolutionStore, conflict_key
from merges.engine.validation import Verdict, validate_text


@dataclass
class LadderPolicy:
    rule_set: str = "complementary"
    conflict_threshold: int = 10
    review_policy: str = "threshold"  # threshold | always | never
    llm: LLMSettings | None = None  # None: no agent tier configured
    budget: Budget = field(default_factory=Budget)
    store: ResolutionStore | None = None
    worktree_root: Path | None = None  # where agent worktrees go (default: the system temp dir)


@dataclass
class FileSettlement:
    """What became of one conflicted path: per-hunk decisions, the proposal, its validation."""

    detail: ConflictDetail
    # {index, tier, resolver, rationale, lines}; the structured tier adds parent and order, its rationale
    # says them for people ("kept both: class members, sorted by name")
    hunks: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None  # the whole proposed text (None: nothing to propose, e.g. a binary file)
    proposed_by: str = ""
    validation: Verdict | None = None

    @property
    def settled(self) -> bool:
        return self.text is not None and all(h["tier"] for h in self.hunks) and bool(
            self.validation and self.validation.ok)


@dataclass
class Settlement:
    files: list[FileSettlement]
    settled: bool = False
    review_reason: str = ""
    llm_invocations: int = 0
    llm_cost_usd: float = 0.0
    llm_rationale: str = ""
    llm_error: str = ""

    def tree_changes(self) -> dict[str, tuple[str, bytes] | None]:
        return {f.detail.path: (f.detail.mode, f.text.encode()) for f in self.files if f.text is not None}


def settle(git: Git, conflict: MergeTreeResult, partial_head: str, details: Sequence[ConflictDetail],
           policy: LadderPolicy, sides: Sequence[SideIntent], hint: str = "") -> Settlement:
    """Climb the ladder for one conflicted merge (``conflict``: git's merge of a source onto
    ``partial_head``). The settlement is settled only when every file has a validated text and no
    person has to look; otherwise ``review_reason`` says why one must."""
    files = [_deterministic(detail, policy) for detail in details]
    settlement = Settlement(files)
    for_person = [f.detail for f in files if f.detail.kind not in TEXT_KINDS or f.text is None and not f.hunks]
    open_hunks = sum(1 for f in files for h in f.hunks if not h["tier"])
    if for_person:
        kinds = ", ".join(f"{d.path} ({d.kind})" for d in for_person)
        settlement.review_reason = f"a person decides non-text conflicts: {kinds}"
    elif open_hunks == 0:
        _validate(files)
        failed = [f.validation.reason for f in files if f.validation and not f.validation.ok]
        settlement.review_reason = "; ".join(failed)
    elif open_hunks > policy.conflict_threshold:
        settlement.review_reason = (f"{open_hunks} conflict hunks left after the resolvers, over the ticket's "
                                    f"threshold of {policy.conflict_threshold}")
    elif reason := agent_unavailable(policy.llm):  # no API key, or the agents extra not installed
        settlement.review_reason = reason
    elif not policy.budget.allows():
        settlement.review_reason = BUDGET_EXHAUSTED
    else:
        _agent_tier(git, conflict, partial_head, settlement, policy, sides, hint)
    if not settlement.review_reason and policy.review_policy == "always":
        settlement.review_reason = "the ticket's review policy is always: a person approves every conflict"
    settlement.settled = not settlement.review_reason
    return settlement


def _deterministic(detail: ConflictDetail, policy: LadderPolicy) -> FileSettlement:
    result: FileResolution = resolve_file(detail, policy.rule_set, policy.store)
    settled = FileSettlement(detail)
    settled.hunks = [
        {"index": i, "tier": "resolver" if o.resolver else "", "resolver": o.resolver or "",
         "rationale": o.provenance, "lines": o.lines, **({"parent": o.kind, "order": o.order} if o.kind else {})}
        for i, o in enumerate(result.outcomes)
    ]
    for record, outcome in zip(settled.hunks, result.outcomes, strict=True):
        if outcome.resolver == RECORDED and policy.store is not None:  # whose review this answer reuses
            record["recorded"] = policy.store.citation(conflict_key(outcome.hunk))
    if result.outcomes:
        settled.text = result.render()
        resolvers = sorted({o.resolver for o in result.outcomes if o.resolver})
        settled.proposed_by = ",".join(resolvers) if resolvers else "git"
    return settled


def _validate(files: Sequence[FileSettlement]) -> None:
    for file in files:
        file.validation = validate_text(file.detail.path, file.text) if file.text is not None else Verdict(
            False, f"{file.detail.path}: nothing to validate")


def _agent_tier(git: Git, conflict: MergeTreeResult, partial_head: str, settlement: Settlement,
                policy: LadderPolicy, sides: Sequence[SideIntent], hint: str) -> None:
    assert policy.llm is not None
    files = settlement.files
    with merge_worktree(git, conflict.tree, partial_head, policy.worktree_root) as worktree:
        for file in files:  # what the resolvers settled is applied; the agent sees only what is left
            (worktree / file.detail.path).write_text(file.text or "")
        outcome = resolve_conflicts(worktree, [f.detail.path for f in files], sides, policy.llm, policy.budget,
                                    hint=hint)
    settlement.llm_invocations, settlement.llm_cost_usd = outcome.invocations, outcome.cost_usd
    settlement.llm_rationale, settlement.llm_error = outcome.rationale, outcome.error
    if not outcome.resolved:
        settlement.review_reason = f"the agent did not settle the conflict: {outcome.error}"
        return
    for file in files:
        file.text = outcome.files.get(file.detail.path, file.text)
        file.proposed_by = "llm"
        per_hunk = split_proposal(file.detail.merged_text or "", file.detail.hunks, file.text or "")
        for index, hunk in enumerate(file.hunks):
            if not hunk["tier"]:
                lines = per_hunk[index] if per_hunk else None
                hunk.update(tier="llm", resolver="llm", rationale=outcome.rationale, lines=lines)
    _validate(files)
    failed = [f.validation.reason for f in files if f.validation and not f.validation.ok]
    if failed:
        settlement.review_reason = "the agent's resolution does not validate: " + "; ".join(failed)


@contextmanager
def merge_worktree(git: Git, tree: str, parent: str, root: Path | None = None) -> Iterator[Path]:
    """A throwaway worktree holding ``tree`` (git's conflicted merge, markers and all).

    Its name says which process on which host made it, so the next one made here can remove what a
    process that died (a killed worker) left behind: nothing else would.
    """
    commit = git.commit_tree(tree, [parent], "dagmerge: conflicted merge, for resolving\n")
    remove_dead_worktrees(git, root)
    path = Path(tempfile.mkdtemp(prefix=f"{_worktree_prefix()}{os.getpid()}-", dir=root))
    path.rmdir()
    git.run("worktree", "add", "-q", "--detach", str(path), commit)
    try:
        yield path
    finally:
        git.run("worktree", "remove", "--force", "--force", str(path), ok=(0, 128))
        git.run("worktree", "prune")


def _worktree_prefix() -> str:
    return f"dagmerge-merge-{socket.gethostname()}-"


def remove_dead_worktrees(git: Git, root: Path | None = None) -> list[Path]:
    """Remove the merge worktrees under ``root`` whose process on this host is gone; returns them."""
    prefix = _worktree_prefix()
    dead = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            git.run("worktree", "remove", "--force", "--force", str(path), ok=(0, 128))
            shutil.rmtree(path, ignore_errors=True)  # a worktree of another clone sharing the root
            dead.append(path)
    if dead:
        git.run("worktree", "prune")
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
