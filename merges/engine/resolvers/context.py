"""What a resolver sees of one conflict hunk, and the line comparisons the resolvers share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from merges.engine.conflicts import Hunk


@dataclass(frozen=True)
class Sides:
    """The whole base, ours and theirs texts of the conflicted file (None: not known)."""

    base: str | None
    ours: str | None
    theirs: str | None

    @cached_property
    def counts(self) -> tuple[Counter[str], Counter[str], Counter[str]] | None:
        """How often each line (by ``content_key``) occurs in base, ours and theirs."""
        if self.base is None or self.ours is None or self.theirs is None:
            return None
        base, ours, theirs = (Counter(map(content_key, t.split("\n"))) for t in (self.base, self.ours, self.theirs))
        return base, ours, theirs


@dataclass(frozen=True)
class HunkContext:
    hunk: Hunk
    path: str
    sides: Sides
    before: list[str] = field(default_factory=list)  # merged lines since the previous hunk, nearest last
    after: list[str] = field(default_factory=list)  # merged lines up to the next hunk


def content_key(line: str) -> str:
    """A line without its whitespace layout: what two lines must share to be "the same line"."""
    return " ".join(line.split())


def layout_key(lines: Iterable[str]) -> tuple[str, ...]:
    """Lines as a reader sees them: trailing spaces, runs of spaces inside a line and runs of blank lines
    do not count; indentation does (it is syntax in Python and YAML), and so do line endings (a side that
    changed them changed every line, and a mix is nobody's intent)."""
    key: list[str] = []
    for line in lines:
        ending = "\r" if line.endswith("\r") else ""
        text = line.rstrip()
        if not text:
            if key and key[-1] == ending:
                continue
            key.append(ending)
            continue
        indent = text[: len(text) - len(text.lstrip())]
        key.append(indent + " ".join(text.split()) + ending)
    return tuple(key)


def copies_disagree(ctx: HunkContext, ours_kept: Iterable[str], theirs_kept: Iterable[str]) -> bool:
    """Whether keeping these lines of each side would contradict the other side elsewhere in the file.

    Two ways: a side brings here a line the base had and the other side deleted or changed (a line moved
    on one side, changed on the other: keeping it undoes the other side); or a side brings a line new to
    the file that the other side added somewhere else (the same addition at two places: keeping it makes
    it twice). Lines without a letter or digit are not followed. Unknown sides: assume so.
    """
    counts = ctx.sides.counts
    if counts is None:
        return True
    base, ours, theirs = counts
    ours_kept, theirs_kept = list(ours_kept), list(theirs_kept)
    for kept, other, other_kept in ((ours_kept, theirs, theirs_kept), (theirs_kept, ours, ours_kept)):
        also_here = Counter(map(content_key, other_kept))
        for line in kept:
            key = content_key(line)
            if not any(c.isalnum() for c in key):
                continue
            if base[key] > other[key] or (base[key] == 0 and other[key] > also_here[key]):
                return True
    return False
