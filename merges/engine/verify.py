"""The ticket's own check (``verify_command``), run on a fully merged tree before the ref moves."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from merges.engine.git import Git
from merges.engine.processes import check_io_allowed, kill_process_group, process_environment
from merges.engine.settling import merge_worktree
from merges.engine.validation import Verdict


@dataclass(frozen=True)
class VerifyCommand:
    command: str
    timeout_s: float = 600
    worktree_root: Path | None = None


def verify_tree(git: Git, commit: str, verify: VerifyCommand) -> Verdict:
    """Run the command (no shell; split like one) in a worktree of ``commit``; exit 0 passes."""
    try:
        argv = shlex.split(verify.command)
    except ValueError as exc:
        return Verdict(False, f"verify command cannot be parsed: {exc}")
    with merge_worktree(git, git.tree_of(commit), commit, verify.worktree_root) as worktree:
        env = process_environment({"HOME": str(worktree)})
        check_io_allowed()
        try:
            proc = subprocess.Popen(argv, cwd=worktree, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return Verdict(False, f"verify command cannot start: {exc.strerror}")
        try:
            output, _ = proc.communicate(timeout=verify.timeout_s)
        except subprocess.TimeoutExpired:
            kill_process_group(proc)
            proc.communicate()
            return Verdict(False, f"verify command timed out after {verify.timeout_s:g} s")
        kill_process_group(proc, grace=0.5)  # what the command left running in the background
    if proc.returncode:
        tail = output.decode(errors="replace").strip().splitlines()[-5:]
        return Verdict(False, f"verify command exited with status {proc.returncode}: " + " | ".join(tail))
    return Verdict(True)
