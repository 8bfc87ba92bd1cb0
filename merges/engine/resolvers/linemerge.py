"""Line-level merge inside a hunk: git conflicts on changes that only touch; this looks closer.

Each side's change inside the hunk is a list of edits of base line ranges, found with zero context.
Edits of the two sides that share a base line, or insert at the same point, overlap: then the hunk is
left to someone who knows what the sides meant. Replayed on real history (docs/benchmarks.md), touching
edits were still wrongly combined where a side moved a line (its place in the result depends on both
sides' orders) or inserted next to a line the other side rewrote or re-indented (the insertion's
anchor is gone, so its place before or after the new text is a guess): both decline too, as does a
result that would undo or repeat the other side's lines elsewhere (``copies_disagree``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from merges.engine.resolvers.context import HunkContext, content_key, copies_disagree

SIMILAR = 0.6  # difflib ratio above which a changed line is the same line edited, not another line


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
    if (changes is None or copies_disagree(ctx, _inserted(ours), _inserted(theirs))
            or _moves_a_line(ctx, ours, theirs) or _loses_an_anchor(hunk.base, ours, theirs)):
        return None
    return apply(hunk.base, changes)


def _moves_a_line(ctx: HunkContext, ours: list[Edit], theirs: list[Edit]) -> bool:
    """Whether a side moved a line: deleted here a line the base has once and the side still has once (so
    it went elsewhere), or inserted here such a line (so it came from elsewhere). Counted over the whole
    file; lines the base has several times (``else:``, ``return None``) are not followed. Unknown sides:
    assume a move."""
    counts = ctx.sides.counts
    if counts is None:
        return True
    base, *sides = counts
    for changes, side in zip((ours, theirs), sides, strict=True):
        for edit in changes:
            removed = {content_key(line) for line in ctx.hunk.base[edit.start : edit.end]}
            added = {content_key(line) for line in edit.lines}
            for key in removed ^ added:
                if not any(c.isalnum() for c in key):
                    continue
                if base[key] == 1 and side[key] == 1:
                    return True
    return False


def _loses_an_anchor(base: Sequence[str], ours: list[Edit], theirs: list[Edit]) -> bool:
    """Whether a side inserts next to a line the other side replaced by a different line."""
    for inserts, others in ((ours, theirs), (theirs, ours)):
        for insertion in (e for e in inserts if e.start == e.end):
            for other in others:
                if other.start == other.end or not other.lines or insertion.start not in (other.start, other.end):
                    continue
                before = insertion.start == other.start
                old = base[other.start] if before else base[other.end - 1]
                new = other.lines[0] if before else other.lines[-1]
                if not _same_line(old, new):
                    return True
    return False


def _same_line(old: str, new: str) -> bool:
    """The same line edited: same indentation, mostly the same text."""
    indent = len(old) - len(old.lstrip()), len(new) - len(new.lstrip())
    return (old[: indent[0]] == new[: indent[1]]
            and SequenceMatcher(None, old.strip(), new.strip()).ratio() >= SIMILAR)


def _inserted(changes: list[Edit]) -> list[str]:
    return [line for edit in changes for line in edit.lines]
