"""Line-level merges inside a hunk: git conflicts on changes that only touch; these look closer.

Each side's change inside the hunk is a list of edits of base line ranges, found with zero context.
Edits of the two sides that share a base line, or insert at the same point, overlap: then the hunk is
left to someone who knows what the sides meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from merges.resolvers.context import HunkContext, reinserts_changed_line


@dataclass(frozen=True)
class Edit:
    start: int  # base lines [start, end) are replaced by ``lines``; start == end: an insertion
    end: int
    lines: tuple[str, ...]


def edits(base: Sequence[str], side: Sequence[str]) -> list[Edit]:
    matcher = SequenceMatcher(None, base, side, autojunk=False)
    return [Edit(i1, i2, tuple(side[j1:j2])) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]


def _overlap(a: Edit, b: Edit) -> bool:
    if a.start == a.end and b.start == b.end:
        return a.start == b.start
    if a.start == a.end:
        return b.start < a.start < b.end
    if b.start == b.end:
        return a.start < b.start < a.end
    return a.start < b.end and b.start < a.end


def combine(ours: list[Edit], theirs: list[Edit]) -> list[Edit] | None:
    """Both sides' edits in base order, identical ones once; None when any two overlap."""
    theirs = [e for e in theirs if e not in ours]
    if any(_overlap(a, b) for a in ours for b in theirs):
        return None
    return sorted(ours + theirs, key=lambda e: (e.start, e.end))


def apply(base: Sequence[str], changes: list[Edit]) -> list[str]:
    """``changes`` (sorted, not overlapping) applied to ``base``."""
    result: list[str] = []
    position = 0
    for edit in changes:
        result += base[position : edit.start]
        result += edit.lines
        position = edit.end
    return result + list(base[position:])


def line_merge(ctx: HunkContext) -> list[str] | None:
    """Complementary: both sides' edits applied, when no two overlap (adjacent edits do not)."""
    hunk = ctx.hunk
    ours, theirs = edits(hunk.base, hunk.ours), edits(hunk.base, hunk.theirs)
    changes = combine(ours, theirs)
    if changes is None or reinserts_changed_line(ctx, _inserted(ours), _inserted(theirs)):
        return None
    return apply(hunk.base, changes)


def _inserted(changes: list[Edit]) -> list[str]:
    return [line for edit in changes for line in edit.lines]
