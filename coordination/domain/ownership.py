"""File-ownership claims: who holds which patterns, who must wait for whom, and what was changed outside.

Pure functions, no Django and no git: the caller passes the claims and the repository's file list; the
pattern language itself is ``globs``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from coordination.domain.globs import (
    BadPattern,
    common_path,
    compile_glob,
    literal_head,
    matches,
    patterns_overlap,
    union_regex,
    validate_pattern,
)

__all__ = ["BadPattern", "Overlap", "PredictedOverlap", "matches", "overlap_example", "overlapping_claims",
           "patterns_overlap", "predicted_overlaps", "validate_pattern", "violations"]


class Overlap(NamedTuple):
    """A held claim that blocks a candidate; ``example`` is a path both match, an existing file if any."""

    holder: str
    candidate_pattern: str
    held_pattern: str
    example: str


class PredictedOverlap(NamedTuple):
    """Two tasks that may run in parallel and claim a common path (``example``)."""

    task: str
    other: str
    pattern: str
    other_pattern: str
    example: str


def overlapping_claims(
    candidate_patterns: Sequence[str], held: Mapping[str, Sequence[str]], existing_files: Iterable[str] = ()
) -> list[Overlap]:
    """The held claims (holder, e.g. a running task's key, to its patterns) that make a candidate wait."""
    example = example_finder(existing_files)
    return [
        Overlap(holder, candidate, held_pattern, path)
        for holder, held_patterns in held.items()
        for candidate, held_pattern, path in _overlapping_pairs(example, candidate_patterns, held_patterns)
    ]


def predicted_overlaps(
    tasks: Mapping[str, Sequence[str]],
    may_run_in_parallel: Callable[[str, str], bool],
    existing_files: Iterable[str] = (),
) -> list[PredictedOverlap]:
    """Submit-time warnings: claims of tasks that may run in parallel (no dependency path) and can collide.

    Only pairs whose claims may share a first folder are compared (see ``_neighbours``): a spec of thousands
    of tasks, each claiming a folder of its own, is checked in linear time rather than in millions of pairs.
    """
    example = example_finder(existing_files)
    keys = [key for key in tasks if tasks[key]]
    position = {key: index for index, key in enumerate(keys)}
    neighbours = _neighbours({key: tasks[key] for key in keys})
    return [
        PredictedOverlap(task, other, pattern, other_pattern, path)
        for task in keys
        for other in sorted((o for o in neighbours[task] if position[o] > position[task]), key=position.__getitem__)
        if may_run_in_parallel(task, other)
        for pattern, other_pattern, path in _overlapping_pairs(example, tasks[task], tasks[other])
    ]


def _neighbours(claims: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For each holder, the others whose patterns may meet its own: those naming the same plain first folder,
    and those starting with a glob, which may meet anything."""
    by_first: dict[str, set[str]] = {}
    anywhere: set[str] = set()
    for holder, patterns in claims.items():
        for pattern in patterns:
            head = literal_head(pattern)
            (by_first.setdefault(head[0], set()) if head else anywhere).add(holder)
    found: dict[str, set[str]] = {}
    for holder, patterns in claims.items():
        near = set(claims) if holder in anywhere else anywhere.union(
            *(by_first[literal_head(pattern)[0]] for pattern in patterns))
        found[holder] = near - {holder}
    return found


def violations(claim_patterns: Sequence[str], changed_files: Iterable[str]) -> list[str]:
    """Changed files outside the claim, sorted.

    A task without claims declared no ownership (``owned_files`` is optional), so nothing it changed is a
    violation; it also never makes another task wait.
    """
    if not claim_patterns:
        return []
    claim = union_regex(tuple(claim_patterns))
    return sorted({path for path in changed_files if not claim.fullmatch(path)})


def _overlapping_pairs(
    example: Callable[[str, str], str | None], left: Sequence[str], right: Sequence[str]
) -> Iterator[tuple[str, str, str]]:
    for a in left:
        for b in right:
            path = example(a, b)
            if path is not None:
                yield a, b, path


def overlap_example(a: str, b: str, existing_files: Iterable[str] = ()) -> str | None:
    """A path both patterns match, preferring an existing file; None when they cannot overlap."""
    return example_finder(existing_files)(a, b)


def example_finder(existing_files: Iterable[str]) -> Callable[[str, str], str | None]:
    """Examples for pattern pairs; each pattern reads the (possibly 100k-long) file list at most once, and only
    the part under its plain leading folders (``pkg3/**`` reads ``pkg3/…``), found by bisection."""
    files = sorted(existing_files)
    covered: dict[str, frozenset[str]] = {}

    def under_head(pattern: str) -> Sequence[str]:
        folder = "/".join(literal_head(pattern))
        if not folder:
            return files
        inside = files[bisect_left(files, folder + "/"):bisect_left(files, folder + "0")]  # "0" follows "/"
        at = bisect_left(files, folder)
        return [folder, *inside] if files[at:at + 1] == [folder] else inside

    def files_matching(pattern: str) -> frozenset[str]:
        if pattern not in covered:
            covered[pattern] = frozenset(filter(compile_glob(pattern).regex.fullmatch, under_head(pattern)))
        return covered[pattern]

    def example(a: str, b: str) -> str | None:
        if any(x != y for x, y in zip(literal_head(a), literal_head(b), strict=False)):
            return None  # different plain folders: no path matches both
        common = common_path(*sorted((a, b)))
        if common is None:  # no file can match both, so the file list need not be read
            return None
        real = files_matching(a) & files_matching(b)
        return min(real) if real else common

    return example

