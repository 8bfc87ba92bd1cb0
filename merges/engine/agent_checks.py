"""Checking what an agent left in a merge worktree: no markers, nothing touched but the conflicted files.

Nothing an agent says is taken on trust: the files are read back, every file of the worktree is
fingerprinted before and after, and what the agent changed outside its paths is put back as it was.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from merges.engine.git import Git


def check_resolution(worktree: Path, paths: Sequence[str], before: dict[str, str]) -> list[str]:
    """The reasons the agent's work cannot be used; empty when it can."""
    problems = []
    outside = sorted(changed_since(worktree, before) - set(paths))
    if outside:
        problems.append(f"edited files outside the conflict: {', '.join(outside)}")
    missing = [path for path in paths if not (worktree / path).is_file()]
    if missing:
        problems.append(f"deleted conflicted files: {', '.join(missing)}")
    with_markers, not_text = [], []
    for path in paths:
        if path in missing:
            continue
        try:
            text = (worktree / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            not_text.append(path)
            continue
        if marker_lines(text):
            with_markers.append(path)
    if with_markers:
        problems.append(f"markers left in {', '.join(with_markers)}")
    if not_text:
        problems.append(f"not UTF-8 text after the agent's edit: {', '.join(not_text)}")
    return problems


def marker_lines(text: str) -> list[int]:
    """1-based lines that open, split or close a conflict.

    A bare ``=======`` is not counted on its own: it is a legitimate line (a reStructuredText underline);
    without ``<<<<<<<`` and ``>>>>>>>`` there is no conflict left.
    """
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        for marker in ("<<<<<<<", "|||||||", ">>>>>>>"):
            if line.startswith(marker) and line[7:8] in ("", " ", "\r"):
                found.append(number)
    return found


def worktree_state(worktree: Path) -> dict[str, str]:
    """Every path git sees as not clean (modified, deleted, untracked, ignored) with a digest of its content.

    Two states differ exactly where a file changed in between: a clean file that changes appears, a dirty
    one changes digest or disappears.
    """
    out = Git(worktree).run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=traditional",
                            "--no-renames").stdout
    state = {}
    for entry in out.split(b"\0"):
        if len(entry) > 3:
            path = entry[3:].decode(errors="surrogateescape").rstrip("/")
            state[path] = _digest(worktree / path)
    return state


def changed_since(worktree: Path, before: dict[str, str]) -> set[str]:
    after = worktree_state(worktree)
    changed = {path for path, digest in after.items() if before.get(path) != digest}
    # Dirty before, clean now: it changed back to the committed content.
    return changed | {path for path in before.keys() - after.keys() if _digest(worktree / path) != before[path]}


def _digest(path: Path) -> str:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_file():
        return hashlib.sha1(path.read_bytes()).hexdigest()
    if path.is_dir():
        digest = hashlib.sha1()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode(errors="surrogateescape") + b"\0")
            digest.update(child.read_bytes())
        return "dir:" + digest.hexdigest()
    return "missing"


def restore(worktree: Path, originals: dict[str, bytes]) -> None:
    for path, content in originals.items():
        target = worktree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
