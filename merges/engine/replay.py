"""Replaying a repository's history through the resolvers: how often they settle a hunk, how often rightly.

Two modes:

- ``history``: every two-parent merge is merged again with ``merge-tree``; a hunk a resolver settled is
  right when the merge commit has the same text at that place (whitespace aside). History-safe rules.
- ``parallel``: complementary conflicts made from real code. For consecutive commits C1, C2 changing a
  file, with P the parent of C1, C2's change is transplanted onto P (each C1→C2 edit mapped through the
  P↔C1 alignment, zero context; pairs where C2 edits lines C1 introduced are dropped), then P ← C1 and
  the transplant are merged. Where git conflicts, the author's C2 file is the right answer.

Nothing is written into the repository: merge-tree writes into a temporary object directory that
reads the repository's objects as alternates.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from merges.engine.conflicts import TEXT_KINDS, describe_conflicts, marker_collision, safe_marker_size
from merges.engine.git import Git, GitError, MergeTreeResult
from merges.engine.mergefile import git_merge_file
from merges.engine.resolvers.context import Sides, content_key
from merges.engine.resolvers.ladder import COMPLEMENTARY, HISTORY_SAFE, FileResolution, resolve_file, resolve_merged
from merges.engine.resolvers.linemerge import Edit, apply

MODES = ("history", "parallel")
DEFAULT_RULES = {"history": HISTORY_SAFE, "parallel": COMPLEMENTARY}
BATCH = 200  # merges per merge-tree process, commit pairs per cat-file


@dataclass
class ResolverScore:
    resolved: int = 0
    right: int = 0
    unjudged: int = 0  # the right answer could not be told apart from a neighbouring unsettled hunk

    @property
    def precision(self) -> float | None:
        judged = self.resolved - self.unjudged
        return self.right / judged if judged else None


@dataclass
class ReplayReport:
    mode: str
    rule_set: str
    repository: str
    head: str
    cases: int = 0  # merges (history) or commit pairs (parallel) examined
    conflicted_cases: int = 0
    files: Counter[str] = field(default_factory=Counter)  # conflicted files by kind
    hunks: int = 0  # conflicted hunks; a conflict with no text hunks counts as one
    resolvers: dict[str, ResolverScore] = field(default_factory=dict)
    notes: Counter[str] = field(default_factory=Counter)  # cases or files left out, and why
    git_seconds: float = 0.0
    resolve_seconds: float = 0.0
    judge_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def total(self) -> ResolverScore:
        return ResolverScore(*(sum(getattr(s, f) for s in self.resolvers.values())
                               for f in ("resolved", "right", "unjudged")))

    @property
    def coverage(self) -> float | None:
        return self.total.resolved / self.hunks if self.hunks else None

    def as_dict(self) -> dict[str, Any]:
        total = self.total
        return {
            "mode": self.mode, "rule_set": self.rule_set, "repository": self.repository, "head": self.head,
            "cases": self.cases, "conflicted_cases": self.conflicted_cases, "files": dict(self.files),
            "hunks": self.hunks, "resolved": total.resolved, "right": total.right, "unjudged": total.unjudged,
            "coverage": self.coverage, "precision": total.precision,
            "resolvers": {name: {"resolved": s.resolved, "right": s.right, "unjudged": s.unjudged,
                                 "precision": s.precision} for name, s in sorted(self.resolvers.items())},
            "notes": dict(self.notes),
            "seconds": {"total": self.seconds, "git": self.git_seconds, "resolvers": self.resolve_seconds,
                        "judging": self.judge_seconds},
            "ms_per_hunk": self.ms_per_hunk,
        }

    @property
    def ms_per_hunk(self) -> float | None:
        return 1000 * self.resolve_seconds / self.hunks if self.hunks else None

    def format(self) -> str:
        total = self.total
        unit = "merges" if self.mode == "history" else "commit pairs"
        kinds = ", ".join(f"{kind} {count}" for kind, count in self.files.most_common())
        lines = [
            f"replay {self.mode} of {self.repository} at {self.head[:12]} (rules: {self.rule_set})",
            f"  {unit} examined {self.cases}, with conflicts {self.conflicted_cases}; "
            f"conflicted files {sum(self.files.values())}" + (f" ({kinds})" if kinds else ""),
            f"  hunks conflicted {self.hunks}, resolved {total.resolved} (coverage {_percent(self.coverage)}), "
            f"right {total.right} of {total.resolved - total.unjudged} judged "
            f"(precision {_percent(total.precision)})",
            f"  {'resolver':<16}{'resolved':>9}{'right':>7}{'unjudged':>10}{'precision':>11}",
        ]
        for name, score in sorted(self.resolvers.items()):
            lines.append(f"  {name:<16}{score.resolved:>9}{score.right:>7}{score.unjudged:>10}"
                         f"{_percent(score.precision):>11}")
        if self.notes:
            lines.append("  notes: " + ", ".join(f"{why} {count}" for why, count in sorted(self.notes.items())))
        per_hunk = f"{self.ms_per_hunk:.2f} ms/hunk" if self.ms_per_hunk is not None else "no hunks"
        lines.append(f"  time {self.seconds:.1f} s: git {self.git_seconds:.1f} s, resolvers "
                     f"{self.resolve_seconds:.2f} s ({per_hunk}), judging {self.judge_seconds:.1f} s")
        return "\n".join(lines)


def _percent(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"


def replay(repo: str | Path, mode: str, limit: int | None = None, since: str | None = None,
           rule_set: str | None = None) -> ReplayReport:
    """Measure the resolvers on ``repo``'s history from HEAD back (``limit`` merges or commit pairs)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    started = time.monotonic()
    with _scratch_objects(Path(repo)) as git:
        head = git.rev_parse("HEAD") or ""
        report = ReplayReport(mode, rule_set or DEFAULT_RULES[mode], str(repo), head)
        if mode == "history":
            _replay_history(git, report, limit, since)
        else:
            _replay_parallel(git, report, limit, since)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _scratch_objects(repo: Path) -> Iterator[Git]:
    objects = Git(repo).text("rev-parse", "--path-format=absolute", "--git-path", "objects")
    with tempfile.TemporaryDirectory(prefix="dagmerge-replay-") as scratch:
        yield Git(repo, env={"GIT_OBJECT_DIRECTORY": scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects})


def _rev_list(git: Git, *args: str, since: str | None) -> list[list[str]]:
    options = [f"--since={since}"] if since else []
    return [line.split() for line in git.text("rev-list", "--parents", *options, *args, "HEAD").splitlines()]


# -- history ------------------------------------------------------------------------------------------

def _replay_history(git: Git, report: ReplayReport, limit: int | None, since: str | None) -> None:
    options = ["--merges"] + ([f"--max-count={limit}"] if limit else [])
    merges = [(m, p1, p2) for m, p1, p2, *more in _rev_list(git, *options, since=since) if not more]
    for chunk in (merges[i : i + BATCH] for i in range(0, len(merges), BATCH)):
        started = time.monotonic()
        results = _merge_trees(git, [(p1, p2) for _m, p1, p2 in chunk])
        report.git_seconds += time.monotonic() - started
        for (merge, _p1, _p2), result in zip(chunk, results, strict=True):
            report.cases += 1
            if result is None:
                report.notes["merges git could not redo"] += 1
            elif not result.clean:
                report.conflicted_cases += 1
                _score_merge(git, report, merge, result)


def _merge_trees(git: Git, pairs: list[tuple[str, str]]) -> list[MergeTreeResult | None]:
    """merge-tree results in one process; when one merge fails the batch, each merge on its own."""
    try:
        return list(git.merge_tree_many(pairs))
    except GitError:
        results: list[MergeTreeResult | None] = []
        for pair in pairs:
            try:
                results.append(git.merge_tree(*pair))
            except GitError:
                results.append(None)
        return results


def _score_merge(git: Git, report: ReplayReport, merge: str, result: MergeTreeResult) -> None:
    started = time.monotonic()
    details = describe_conflicts(git, result)
    truths = git.read_blobs([f"{merge}:{d.path}" for d in details])
    report.git_seconds += time.monotonic() - started
    for detail, truth in zip(details, truths, strict=True):
        report.files[detail.kind] += 1
        if detail.kind not in TEXT_KINDS:
            report.hunks += 1
            continue
        started = time.monotonic()
        resolution = resolve_file(detail, report.rule_set)
        report.resolve_seconds += time.monotonic() - started
        _score(report, resolution, _utf8(truth), (detail.base_text, detail.ours_text, detail.theirs_text))


# -- parallel -----------------------------------------------------------------------------------------

def _replay_parallel(git: Git, report: ReplayReport, limit: int | None, since: str | None) -> None:
    parent = {entry[0]: entry[1] for entry in _rev_list(git, "--no-merges", since=since) if len(entry) == 2}
    triples = [(parent[c1], c1, c2) for c2, c1 in parent.items() if c1 in parent]
    triples = triples[:limit] if limit else triples
    for chunk in (triples[i : i + BATCH] for i in range(0, len(triples), BATCH)):
        started = time.monotonic()
        edges = sorted({edge for p, c1, c2 in chunk for edge in ((p, c1), (c1, c2))})
        changed = dict(zip(edges, git.changed_paths_many(edges), strict=True))
        cases = [(p, c1, c2, path) for p, c1, c2 in chunk for path in sorted(changed[p, c1] & changed[c1, c2])]
        blobs = git.read_blobs([f"{rev}:{path}" for p, c1, c2, path in cases for rev in (p, c1, c2)])
        report.git_seconds += time.monotonic() - started
        report.cases += len(chunk)
        conflicted: set[str] = set()
        for index, (_p, _c1, c2, path) in enumerate(cases):
            if _score_pair(report, path, blobs[3 * index : 3 * index + 3]):
                conflicted.add(c2)
        report.conflicted_cases += len(conflicted)


def _score_pair(report: ReplayReport, path: str, blobs: list[bytes | None]) -> bool:
    """Merge P ← C1 with C2's change transplanted onto P; score the conflict, if any. True: it conflicted."""
    p_text, c1_text, c2_text = (_utf8(blob) for blob in blobs)
    if p_text is None or c1_text is None or c2_text is None:
        report.notes["files added, deleted, binary or not UTF-8"] += 1
        return False
    transplanted = transplant(p_text, c1_text, c2_text)
    if transplanted is None:
        report.notes["C2 edits lines C1 introduced"] += 1
        return False
    size = safe_marker_size([p_text, c1_text, transplanted])
    started = time.monotonic()
    merged, conflicts = git_merge_file(p_text.encode(), c1_text.encode(), transplanted.encode(), size)
    report.git_seconds += time.monotonic() - started
    if not conflicts:
        report.notes["clean merges" if merged.decode() == c2_text else "clean merges unlike C2"] += 1
        return False
    report.files["content"] += 1
    started = time.monotonic()
    resolution = resolve_merged(merged.decode(), path, Sides(p_text, c1_text, transplanted), report.rule_set,
                                marker_size=size)
    report.resolve_seconds += time.monotonic() - started
    _score(report, resolution, c2_text, (p_text, c1_text, transplanted))
    return True


def transplant(p_text: str, c1_text: str, c2_text: str) -> str | None:
    """C2's change (made on C1) applied to P instead, or None where it edits lines C1 introduced.

    Each C1→C2 edit is mapped onto P through the lines C1 kept from P, with zero context. An insertion
    next to lines C1 introduced lands where C1 inserted them; between two kept lines that were not
    neighbours in P (C1 deleted lines there) its place is unknown, and the pair is dropped as well.
    """
    p, c1, c2 = p_text.split("\n"), c1_text.split("\n"), c2_text.split("\n")
    kept: dict[int, int] = {-1: -1, len(c1): len(p)}  # C1 line → P line, for the lines C1 kept
    for a, b, size in _matching_blocks(p, c1):
        kept.update((b + k, a + k) for k in range(size))
    moved: list[Edit] = []
    for i1, i2, j1, j2 in _differences(c1, c2):
        if i1 == i2:
            before, after = kept.get(i1 - 1), kept.get(i1)
            if before is None and after is None:
                return None
            if before is not None and after is not None and after != before + 1:
                return None
            at = before + 1 if before is not None else after
            assert at is not None
            moved.append(Edit(at, at, tuple(c2[j1:j2])))
            continue
        lines = [kept.get(i) for i in range(i1, i2)]
        first = lines[0]
        if first is None or lines != list(range(first, first + len(lines))):
            return None
        moved.append(Edit(first, first + len(lines), tuple(c2[j1:j2])))
    return "\n".join(apply(p, moved))


def _matching_blocks(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    """(i, j, n): a[i:i+n] == b[j:j+n], in order. The common ends -- most of two versions of a file --
    are matched first, so difflib only looks at the middle."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]:
        suffix += 1
    middle = SequenceMatcher(None, a[prefix : len(a) - suffix], b[prefix : len(b) - suffix], autojunk=False)
    blocks = [(prefix + i, prefix + j, n) for i, j, n in middle.get_matching_blocks() if n]
    return [(0, 0, prefix), *blocks, (len(a) - suffix, len(b) - suffix, suffix)]


def _differences(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    """(i1, i2, j1, j2): a[i1:i2] became b[j1:j2], between the matching blocks."""
    found = []
    i = j = 0
    for block_i, block_j, size in _matching_blocks(a, b):
        if (i, j) != (block_i, block_j):
            found.append((i, block_i, j, block_j))
        i, j = block_i + size, block_j + size
    return found


# -- judging ------------------------------------------------------------------------------------------

def _score(report: ReplayReport, resolution: FileResolution, truth: str | None,
           sides: Sequence[str | None]) -> None:
    report.hunks += len(resolution.outcomes) or 1
    if not resolution.resolved_hunks:
        return
    started = time.monotonic()
    if truth is not None and marker_collision([truth]) and not marker_collision(sides):
        report.notes["files committed with conflict markers (not judged)"] += 1
        truth = None
    verdicts = judge(resolution, truth) if truth is not None else [None] * len(resolution.outcomes)
    report.judge_seconds += time.monotonic() - started
    for outcome, verdict in zip(resolution.outcomes, verdicts, strict=True):
        if outcome.resolver:
            score = report.resolvers.setdefault(outcome.resolver, ResolverScore())
            score.resolved += 1
            score.right += verdict is True
            score.unjudged += verdict is None


def judge(resolution: FileResolution, truth: str) -> list[bool | None]:
    """Per hunk, whether its resolution is what ``truth`` has at that place, whitespace aside.

    The merged text outside the hunks is aligned with ``truth``; the truth between the aligned lines
    around a hunk is the right answer there. None: unsettled, or sharing that stretch with an unsettled hunk.
    """
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
    aligned = _align(merged, right)
    verdicts: list[bool | None] = [None] * len(outcomes)
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
        expected = right[aligned.get(low, -1) + 1 : aligned.get(high, len(right))]
        verdicts[index] = _normalized(proposed) == _normalized(expected)
    return verdicts


def _align(merged: list[str], right: list[str]) -> dict[int, int]:
    """Lines of ``merged`` matched to lines of ``right``, in order."""
    return {i + k: j + k for i, j, size in _matching_blocks(merged, right) for k in range(size)}


def _normalized(lines: list[str]) -> list[str]:
    return [content_key(line) for line in lines if line.strip()]


def _utf8(blob: bytes | None) -> str | None:
    if blob is None or b"\0" in blob[:8000]:
        return None
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
