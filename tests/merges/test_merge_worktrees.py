"""Throwaway merge worktrees (verify command, agent): what a killed worker left is removed by the next one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from merges.engine.settling import merge_worktree
from tests.gitrepo import Repo

DIE_INSIDE = """
import os, signal, sys
from pathlib import Path
from merges.engine.git import Git
from merges.engine.settling import merge_worktree
git = Git(Path(sys.argv[1]))
with merge_worktree(git, git.tree_of("HEAD"), git.rev_parse("HEAD"), Path(sys.argv[2])):
    os.kill(os.getpid(), signal.SIGKILL)  # a worker killed while its verify command runs
"""


def _registered(repo: Repo) -> int:
    return repo.git.text("worktree", "list", "--porcelain").count("worktree ") - 1


def test_the_next_merge_worktree_removes_what_a_killed_process_left(tmp_path):
    repo = Repo(tmp_path / "repo")
    head = repo.commit({"a.txt": "a\n"})
    root = tmp_path / "worktrees"
    root.mkdir()
    died = subprocess.run([sys.executable, "-c", DIE_INSIDE, str(repo.path), str(root)], capture_output=True,
                          cwd=Path(__file__).parents[2])
    assert died.returncode == -9, died.stderr
    [left] = list(root.iterdir())
    assert _registered(repo) == 1

    with merge_worktree(repo.git, repo.git.tree_of(head), head, root) as first:
        with merge_worktree(repo.git, repo.git.tree_of(head), head, root) as second:
            assert not left.exists()  # its process is gone
            assert first.exists() and second.exists()  # this process is alive: its worktrees stay
            assert _registered(repo) == 2

    assert list(root.iterdir()) == []
    assert _registered(repo) == 0
