"""The ticket's own check (``verify_command``), run on a fully merged tree before the ref moves.

The command is the ticket author's code, as untrusted as a task's: it runs confined like one
(``run_confined``: only its worktree writable, ``hide`` invisible, no network unless asked), and is
refused where the machine cannot confine it unless the operator chose trusted mode.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from merges.engine.git import Git
from merges.engine.isolation import Isolation
from merges.engine.runner import run_confined
from merges.engine.settling import merge_worktree
from merges.engine.validation import Verdict


@dataclass(frozen=True)
class VerifyCommand:
    command: str
    timeout_s: float = 600
    worktree_root: Path | None = None
    isolation: Isolation = field(default_factory=Isolation.detect)
    trusted: bool = False  # the operator allows unconfined code where bubblewrap is missing
    hide: Sequence[Path] = ()
    network: bool = False


def verify_tree(git: Git, commit: str, verify: VerifyCommand) -> Verdict:
    """Run the command (no shell; split like one) in a worktree of ``commit``; exit 0 passes."""
    try:
        argv = shlex.split(verify.command)
    except ValueError as exc:
        return Verdict(False, f"verify command cannot be parsed: {exc}")
    if not argv:
        return Verdict(False, "verify command is empty")
    if not verify.isolation.isolated and not verify.trusted:
        return Verdict(False, f"verify command not run: no isolation here ({verify.isolation.reason}) and "
                              "DAGMERGE_TRUSTED_CODE is not set")
    with merge_worktree(git, git.tree_of(commit), commit, verify.worktree_root) as worktree:
        done = run_confined(argv, isolation=verify.isolation, workdir=worktree, extra_env={"HOME": str(worktree)},
                            timeout=verify.timeout_s, hide=verify.hide, network=verify.network)
    if done.timed_out:
        return Verdict(False, f"verify command timed out after {verify.timeout_s:g} s")
    if done.exit_code:
        tail = done.output_tail.strip().splitlines()[-5:]
        return Verdict(False, f"verify command exited with status {done.exit_code}: " + " | ".join(tail))
    return Verdict(True)
