"""Convergence merge: fold several source branches into one head, least conflicts first.

Works on the object database only (``merge-tree --write-tree`` + ``commit-tree``); moving a ref is
the caller's business, so a half-finished convergence never shows anywhere.

Re-scoring every remaining source after each merge costs N²/2 merge-tree runs. Instead each source's
changed-path set (since it forked) is computed once, in one ``diff-tree --stdin``; a source is re-scored
only when a merge touched one of its paths, and a source whose paths meet nothing changed on the head
since it forked scores 0 without a merge. The filter only decides when to score: every merge is still a
real merge-tree, so a wrong guess could only change the order, never the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from merges.engine.git import Git, MergeTreeResult


@dataclass(frozen=True)
class Source:
    name: str
    sha: str
    # Where the branch left the target (the sandboxes check that the branch descends from it); merge-base
    # when unknown.
    fork_point: str | None = None


@dataclass
class ConvergenceResult:
    start_head: str
    head: str
    order: list[str] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)  # hunks against the head when picked / last seen
    pairwise: dict[str, dict[str, int]] = field(default_factory=dict)
    already_merged: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    conflict_source: str | None = None
    conflict: MergeTreeResult | None = None
    merge_tree_runs: int = 0
    duration_ms: int = 0

    @property
    def clean(self) -> bool:
        return not self.pending

    @property
    def conflict_hunks(self) -> int:
        return self.scores.get(self.conflict_source, 0) if self.conflict_source else 0


def default_message(source: Source) -> str:
    return f"Merge {source.name}\n"


class _Scorer:
    """Merge-tree results and hunk counts of sources against the current head, computed in batches."""

    def __init__(self, git: Git):
        self.git = git
        self.runs = 0

    def merge_all(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[MergeTreeResult, int]]:
        if not pairs:
            return []
        self.runs += len(pairs)
        results = self.git.merge_tree_many(pairs)
        conflicted = [r for r in results if not r.clean]
        hunks = dict(zip(map(id, conflicted), self._hunks(conflicted), strict=True))
        return [(r, hunks.get(id(r), 0)) for r in results]

    def _hunks(self, results: list[MergeTreeResult]) -> list[int]:
        specs = [(i, f"{r.tree}:{c.path}") for i, r in enumerate(results) for c in r.conflicts]
        blobs = self.git.read_blobs([s for _, s in specs])
        counts = [0] * len(results)
        for (i, _), blob in zip(specs, blobs, strict=True):
            counts[i] += (count_markers(blob) if blob is not None else 0) or 1
        return counts


def count_markers(content: bytes) -> int:
    return sum(1 for line in content.split(b"\n") if line.startswith(b"<<<<<<< "))


def converge(
    git: Git,
    head: str,
    sources: Sequence[Source],
    message: Callable[[Source], str] = default_message,
) -> ConvergenceResult:
    """Merge ``sources`` onto commit ``head``, fewest conflict hunks first, stopping at the first source
    that cannot merge cleanly (its conflicts are returned; nothing after it is merged)."""
    started = time.monotonic()
    result = ConvergenceResult(start_head=head, head=head)
    if len(sources) == 1 and (sources[0].fork_point == head or git.is_ancestor(head, sources[0].sha)):
        return _on_top(git, result, sources[0], message, started)
    by_name = {s.name: s for s in sources}
    found = git.fork_points(head, [s.sha for s in sources if not s.fork_point])
    forks = {s.name: s.fork_point or found[s.sha] or head for s in sources}

    # One diff-tree for every source's own paths and for what the head changed since each fork.
    distinct_forks = sorted(set(forks.values()))
    pairs = [(forks[s.name], s.sha) for s in sources] + [(f, head) for f in distinct_forks]
    paths_list = git.changed_paths_many(pairs)
    paths = {s.name: paths_list[i] for i, s in enumerate(sources)}
    head_paths = dict(zip(distinct_forks, paths_list[len(sources) :], strict=True))

    scorer = _Scorer(git)
    result.pairwise = _pairwise_matrix(scorer, sources, paths)

    cached: dict[str, MergeTreeResult | None] = {}  # merge against the current head; None: known clean
    needs_merge = [s for s in sources if paths[s.name] & head_paths[forks[s.name]]]
    for s in sources:
        result.scores[s.name] = 0
        cached[s.name] = None
    for s, (scored, hunks) in zip(needs_merge, scorer.merge_all([(head, s.sha) for s in needs_merge]),
                                  strict=True):
        result.scores[s.name], cached[s.name] = hunks, scored

    remaining = [s.name for s in sources]
    dirty: set[str] = set()  # a merge touched their paths since they were scored: re-score before trusting
    current_tree = git.tree_of(head)

    def pick_next() -> str:
        return min(remaining, key=lambda n: (result.scores[n], _entanglement(n, remaining, result.pairwise),
                                             remaining.index(n)))

    while remaining:
        pick = pick_next()
        # One merge-tree process for the pick and every stale score: re-scoring costs no process of its own.
        batch = [n for n in remaining if n in dirty or (n == pick and cached[n] is None)]
        for n, (scored, hunks) in zip(
            batch, scorer.merge_all([(result.head, by_name[n].sha) for n in batch]), strict=True
        ):
            result.scores[n], cached[n] = hunks, scored
        dirty.clear()
        if batch and pick_next() != pick:  # a fresh score reorders (e.g. the path filter missed a conflict)
            continue
        source = by_name[pick]
        merged = cached[pick]
        assert merged is not None  # the batch above merged the pick whenever its result was unknown
        if not merged.clean:
            result.pending = [pick] + [n for n in remaining if n != pick]
            result.conflict_source, result.conflict = pick, merged
            break
        remaining.remove(pick)
        if merged.tree == current_tree:
            result.already_merged.append(pick)
            continue
        result.head = git.commit_tree(merged.tree, [result.head, source.sha], message(source))
        current_tree = merged.tree
        result.order.append(pick)
        dirty.update(n for n in remaining if paths[n] & paths[pick])
        for n in remaining:
            cached[n] = None  # the head moved: an untouched source still merges cleanly, but anew

    result.merge_tree_runs = scorer.runs
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _on_top(git: Git, result: ConvergenceResult, source: Source, message: Callable[[Source], str],
            started: float) -> ConvergenceResult:
    """One source made on top of the head (a chain's next task): merging it gives its own tree, with no
    merge to run. Still a merge commit, as any landing is; nothing to do when the head holds it already."""
    result.scores[source.name] = 0
    if source.sha == result.head:
        result.already_merged.append(source.name)
    else:
        result.head = git.commit_tree(f"{source.sha}^{{tree}}", [result.head, source.sha], message(source))
        result.order.append(source.name)
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _pairwise_matrix(scorer: _Scorer, sources: Sequence[Source], paths: dict[str, frozenset[str]]
                     ) -> dict[str, dict[str, int]]:
    """Conflict hunks between every two sources; pairs with disjoint paths cannot conflict (0, no merge)."""
    matrix = {s.name: {t.name: 0 for t in sources if t.name != s.name} for s in sources}
    overlapping = [(a, b) for i, a in enumerate(sources) for b in sources[i + 1 :]
                   if paths[a.name] & paths[b.name]]
    for (a, b), (_merged, hunks) in zip(
        overlapping, scorer.merge_all([(a.sha, b.sha) for a, b in overlapping]), strict=True
    ):
        matrix[a.name][b.name] = matrix[b.name][a.name] = hunks
    return matrix


def _entanglement(name: str, remaining: list[str], pairwise: dict[str, dict[str, int]]) -> int:
    """Tie-break between equal scores: merge first the source that conflicts least with the others."""
    return sum(pairwise[name][other] for other in remaining if other != name)
