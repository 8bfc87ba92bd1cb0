"""Judging a settled hunk against what the author committed: exact, layout, equivalent.

The merged text outside the hunks is aligned with the author's file; the author's lines between the aligned
lines around a hunk are the right answer there. **exact**: the same lines. **layout**: the same once runs of
whitespace and blank lines are set aside. **equivalent**: the author's file with the proposal put in that
stretch has the same syntax tree, up to the order of the children of commutative parents (the structured
tier's own reading, ``canonical_form``); where no profile reads the file, or the author's file does not
parse, equivalent falls back to layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from functools import partial

from merges.engine.alignment import matching_blocks
from merges.engine.conflicts import marker_collision
from merges.engine.replay.report import ReplayReport, Score, Verdict
from merges.engine.resolvers.context import content_key
from merges.engine.resolvers.ladder import FileResolution
from merges.engine.resolvers.structured import AS_PLACED, ORDER_RULES, canonical_form, profile_for
from merges.engine.resolvers.syntax import STRUCTURED

OTHER = "other"  # files no structured profile reads


def language_of(path: str) -> str:
    profile = profile_for(path)
    return profile.name if profile is not None else OTHER


def score(report: ReplayReport, resolution: FileResolution, truth: str | None,
          sides: Sequence[str | None]) -> str | None:
    """Count the file's hunks and judge the settled ones, per resolver, language and order rule. Returns the
    author's text when it can judge (not when it was committed with conflict markers)."""
    hunks = len(resolution.outcomes) or 1
    language = language_of(resolution.path)
    report.hunks += hunks
    report.hunks_by_language[language] += hunks
    if truth is not None and marker_collision([truth]) and not marker_collision(sides):
        truth = None  # committed with conflict markers: nothing to judge against
        if resolution.resolved_hunks:
            report.notes["files committed with conflict markers (not judged)"] += 1
    if not resolution.resolved_hunks:
        return truth
    started = time.monotonic()
    verdicts = judge(resolution, truth) if truth is not None else [None] * len(resolution.outcomes)
    report.judge_seconds += time.monotonic() - started
    for outcome, verdict in zip(resolution.outcomes, verdicts, strict=True):
        if not outcome.resolver:
            continue
        report.resolvers.setdefault(outcome.resolver, Score()).add(verdict)
        report.languages.setdefault(language, Score()).add(verdict)
        if outcome.resolver == STRUCTURED:
            for rule in outcome.order.split(", "):
                report.rules.setdefault(rule, Score()).add(verdict)
    return truth


def score_rules_left_out(report: ReplayReport, resolution: FileResolution, truth: str | None,
                         resolve: Callable[[Collection[str]], FileResolution]) -> None:
    """For each order rule the structured tier used in this file, the same file resolved without it: which of
    the hunks it ordered are still settled (by the next rule), and rightly? A rule earns its place when it
    is right more often than what would settle those hunks without it."""
    if truth is None:
        return
    used = {rule for o in resolution.outcomes if o.resolver == STRUCTURED for rule in o.order.split(", ")}
    for rule in sorted(used - {AS_PLACED}):
        started = time.monotonic()
        other = resolve([r for r in ORDER_RULES if r != rule])
        report.resolve_seconds += time.monotonic() - started
        started = time.monotonic()
        verdicts = judge(other, truth)
        report.judge_seconds += time.monotonic() - started
        left_out = report.rules_left_out.setdefault(rule, Score())
        for mine, theirs, verdict in zip(resolution.outcomes, other.outcomes, verdicts, strict=True):
            if mine.resolver == STRUCTURED and rule in mine.order.split(", ") and theirs.resolver:
                left_out.add(verdict)


def judge(resolution: FileResolution, truth: str) -> list[Verdict | None]:
    """Per hunk, how its resolution compares with what ``truth`` has at that place. None: unsettled, or
    sharing that stretch with an unsettled hunk."""
    outcomes = resolution.outcomes
    merged: list[str] = []
    at: list[int] = []
    position = 0
    for index, outcome in enumerate(outcomes):
        merged += resolution.merged_lines[position : outcome.hunk.start - 1]
        at.append(len(merged))
        merged.append(f"\0hunk {index}")  # a line no text has: it aligns with nothing
        position = outcome.hunk.end
    merged += resolution.merged_lines[position:]
    right = truth.split("\n")
    aligned = {i + k: j + k for i, j, size in matching_blocks(merged, right) for k in range(size)}
    tree = _TreeJudge(resolution.path, right)
    verdicts: list[Verdict | None] = [None] * len(outcomes)
    for index, spot in enumerate(at):
        low, high = spot - 1, spot + 1
        while low >= 0 and low not in aligned:
            low -= 1
        while high < len(merged) and high not in aligned:
            high += 1
        inside = [i for i, s in enumerate(at) if low < s < high]
        if not all(outcomes[i].resolver for i in inside):
            continue
        proposed: list[str] = []
        for line in merged[low + 1 : high]:
            is_hunk = line.startswith("\0hunk ")
            proposed += (outcomes[int(line[6:])].lines or []) if is_hunk else [line]
        first, last = aligned.get(low, -1) + 1, aligned.get(high, len(right))
        verdicts[index] = verdict(proposed, right[first:last], partial(tree.same, first, last, proposed))
    return verdicts


def verdict(proposed: list[str], expected: list[str], same_tree: Callable[[], bool | None]) -> Verdict:
    """Three ways right; the tree is only read when the text is not the same."""
    if proposed == expected:
        return Verdict(True, True, True)
    layout = normalized(proposed) == normalized(expected)
    equivalent = same_tree()
    return Verdict(False, layout, layout if equivalent is None else equivalent)


class _TreeJudge:
    """The author's file read once; a proposal judged by putting it in place of a stretch of it."""

    def __init__(self, path: str, right: list[str]):
        self.path, self.right = path, right
        self._form: str | None = None
        self._read = False

    def same(self, first: int, last: int, proposed: list[str]) -> bool | None:
        if not self._read:
            self._form, self._read = canonical_form(self.path, "\n".join(self.right)), True
        if self._form is None:
            return None
        return canonical_form(self.path, "\n".join(self.right[:first] + proposed + self.right[last:])) == self._form


def normalized(lines: list[str]) -> list[str]:
    return [content_key(line) for line in lines if line.strip()]
