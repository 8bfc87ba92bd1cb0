"""The two ways replay finds conflicts in a repository's history, and what it does with each conflicted file.

Nothing is written into the repository: merge-tree writes into a temporary object directory that reads the
repository's objects as alternates.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from merges.engine.conflicts import TEXT_KINDS, ConflictDetail, describe_conflicts, safe_marker_size
from merges.engine.git import Git, GitError, MergeTreeResult
from merges.engine.llm import SideIntent
from merges.engine.mergefile import git_merge_file
from merges.engine.replay.agent import AgentReplay, settle_rest
from merges.engine.replay.judging import score, score_rules_left_out
from merges.engine.replay.report import ReplayReport
from merges.engine.replay.transplant import transplant
from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.ladder import FileResolution, resolve_file, resolve_merged
from merges.engine.resolvers.structured import ORDER_RULES

BATCH = 200  # merges per merge-tree process, commit pairs per cat-file


@contextmanager
def scratch_objects(repo: Path) -> Iterator[Git]:
    objects = Git(repo).text("rev-parse", "--path-format=absolute", "--git-path", "objects")
    with tempfile.TemporaryDirectory(prefix="dagmerge-replay-") as scratch:
        yield Git(repo, env={"GIT_OBJECT_DIRECTORY": scratch, "GIT_ALTERNATE_OBJECT_DIRECTORIES": objects})


def _rev_list(git: Git, *args: str, at: str, since: str | None) -> list[list[str]]:
    options = [f"--since={since}"] if since else []
    return [line.split() for line in git.text("rev-list", "--parents", *options, *args, at, "--").splitlines()]


def _intents(git: Git, ours: str, theirs: str) -> Callable[[], list[SideIntent]]:
    """The two sides as the agent is told of them: the commits' subjects and bodies (read when needed)."""

    def read() -> list[SideIntent]:
        sides = []
        for label, sha in (("ours", ours), ("theirs", theirs)):
            subject, _, body = git.text("log", "-1", "--format=%s%n%b", sha).partition("\n")
            sides.append(SideIntent(sha[:12], subject, body.strip(), label=label))
        return sides

    return read


def _after_resolvers(report: ReplayReport, resolution: FileResolution, truth: str | None,
                     sides: tuple[str | None, ...], resolve: Callable[[Collection[str]], FileResolution],
                     agent: AgentReplay | None, intents: Callable[[], list[SideIntent]]) -> None:
    truth = score(report, resolution, truth, sides)
    score_rules_left_out(report, resolution, truth, resolve)
    if agent is not None:
        settle_rest(agent, report, resolution, truth, intents)


# -- history ------------------------------------------------------------------------------------------

def replay_history(git: Git, report: ReplayReport, limit: int | None, since: str | None, at: str,
                   agent: AgentReplay | None) -> None:
    """Every two-parent merge merged again; the hunks git leaves go to the resolvers, judged against the
    merge commit."""
    options = ["--merges"] + ([f"--max-count={limit}"] if limit else [])
    merges = [(m, p1, p2) for m, p1, p2, *more in _rev_list(git, *options, at=at, since=since) if not more]
    for chunk in (merges[i : i + BATCH] for i in range(0, len(merges), BATCH)):
        if agent is not None and agent.done:
            return
        started = time.monotonic()
        results = _merge_trees(git, [(p1, p2) for _m, p1, p2 in chunk])
        report.git_seconds += time.monotonic() - started
        for (merge, p1, p2), result in zip(chunk, results, strict=True):
            report.cases += 1
            if result is None:
                report.notes["merges git could not redo"] += 1
            elif not result.clean:
                report.conflicted_cases += 1
                _score_merge(git, report, merge, result, agent, _intents(git, p1, p2))


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


def _score_merge(git: Git, report: ReplayReport, merge: str, result: MergeTreeResult, agent: AgentReplay | None,
                 intents: Callable[[], list[SideIntent]]) -> None:
    started = time.monotonic()
    details = describe_conflicts(git, result)
    truths = git.read_blobs([f"{merge}:{d.path}" for d in details])
    report.git_seconds += time.monotonic() - started
    for detail, truth in zip(details, truths, strict=True):
        report.files[detail.kind] += 1
        if detail.kind not in TEXT_KINDS:
            report.hunks += 1
            continue

        def resolve(rules: Collection[str], detail: ConflictDetail = detail) -> FileResolution:
            return resolve_file(detail, report.rule_set, order_rules=rules)

        started = time.monotonic()
        resolution = resolve(ORDER_RULES)
        report.resolve_seconds += time.monotonic() - started
        sides = (detail.base_text, detail.ours_text, detail.theirs_text)
        _after_resolvers(report, resolution, utf8(truth), sides, resolve, agent, intents)


# -- parallel -----------------------------------------------------------------------------------------

def replay_parallel(git: Git, report: ReplayReport, limit: int | None, since: str | None, at: str,
                    agent: AgentReplay | None) -> None:
    """For consecutive commits C1, C2 changing a file (P the parent of C1): P ← C1 merged with C2's change
    transplanted onto P; where git conflicts, the author's C2 file is the right answer."""
    parent = {entry[0]: entry[1] for entry in _rev_list(git, "--no-merges", at=at, since=since) if len(entry) == 2}
    triples = [(parent[c1], c1, c2) for c2, c1 in parent.items() if c1 in parent]
    triples = triples[:limit] if limit else triples
    for chunk in (triples[i : i + BATCH] for i in range(0, len(triples), BATCH)):
        if agent is not None and agent.done:
            return
        started = time.monotonic()
        edges = sorted({edge for p, c1, c2 in chunk for edge in ((p, c1), (c1, c2))})
        changed = dict(zip(edges, git.changed_paths_many(edges), strict=True))
        cases = [(p, c1, c2, path) for p, c1, c2 in chunk for path in sorted(changed[p, c1] & changed[c1, c2])]
        blobs = git.read_blobs([f"{rev}:{path}" for p, c1, c2, path in cases for rev in (p, c1, c2)])
        report.git_seconds += time.monotonic() - started
        report.cases += len(chunk)
        conflicted: set[str] = set()
        for index, (_p, c1, c2, path) in enumerate(cases):
            if _score_pair(report, path, blobs[3 * index : 3 * index + 3], agent, _intents(git, c1, c2)):
                conflicted.add(c2)
        report.conflicted_cases += len(conflicted)


def _score_pair(report: ReplayReport, path: str, blobs: list[bytes | None], agent: AgentReplay | None,
                intents: Callable[[], list[SideIntent]]) -> bool:
    """Merge P ← C1 with C2's change transplanted onto P; score the conflict, if any. True: it conflicted."""
    texts = [utf8(blob) for blob in blobs]
    if None in texts:
        report.notes["files added, deleted, binary or not UTF-8"] += 1
        return False
    p_text, c1_text, c2_text = texts
    assert p_text is not None and c1_text is not None and c2_text is not None
    moved = transplant(p_text, c1_text, c2_text)
    if moved is None:
        report.notes["C2 edits lines C1 introduced"] += 1
        return False
    if moved.moved_away(path, c2_text):
        report.notes["C2 adds to what C1 introduced (by syntax)"] += 1
        return False
    transplanted = moved.text
    size = safe_marker_size([p_text, c1_text, transplanted])
    started = time.monotonic()
    merged, conflicts = git_merge_file(p_text.encode(), c1_text.encode(), transplanted.encode(), size)
    report.git_seconds += time.monotonic() - started
    if not conflicts:
        report.notes["clean merges" if merged.decode() == c2_text else "clean merges unlike C2"] += 1
        return False
    report.files["content"] += 1
    sides = Sides(p_text, c1_text, transplanted)

    def resolve(rules: Collection[str]) -> FileResolution:
        return resolve_merged(merged.decode(), path, sides, report.rule_set, marker_size=size, order_rules=rules)

    started = time.monotonic()
    resolution = resolve(ORDER_RULES)
    report.resolve_seconds += time.monotonic() - started
    _after_resolvers(report, resolution, c2_text, (p_text, c1_text, transplanted), resolve, agent, intents)
    return True


def utf8(blob: bytes | None) -> str | None:
    if blob is None or b"\0" in blob[:8000]:
        return None
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        return None
