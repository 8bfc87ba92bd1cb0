"""Benchmark dagmerge's convergence merge against a bare merge-tree chain and a checkout merge.

converge() adds scoring and ordering on top of ``merge-tree --write-tree`` + ``commit-tree``; this
measures what that costs over the bare chain (goal: at most 1.5x) and how far it stays ahead of merging
in a checked-out worktree the way other agent runners do (goal: at least 4x).

    .venv/bin/python bench/merge_engine.py [--files 5000] [--runs 5] [--n 16 32]

Variants: "disjoint" - every branch changes 3 files no other branch touches; "overlap" - a third of
the branches come in pairs (branch i and i + N/2) sharing one of their 3 files, edited on lines far
apart so git merges them cleanly; the shared paths make converge() re-score the partner after a merge.
Sources carry their fork point as coordination/scheduling/landing.py passes it; "(a) no fp" times converge() without
fork points, when it looks each one up with ``merge-base``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

from merges.engine.convergence import Source, converge  # noqa: E402
from merges.engine.git import Git  # noqa: E402

LINES = 20  # lines per file: edits on lines 3 and 16 of one file merge cleanly
OWN_LINE, FIRST_LINE, SECOND_LINE = 10, 3, 16
STAMP = "1700000000 +0000"


class CountingGit(Git):
    """A Git that counts its subprocesses by subcommand: process starts are most of the cost here."""

    def __init__(self, repo: Path):
        super().__init__(repo)
        self.calls: Counter[str] = Counter()

    def run(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls[_subcommand(args)] += 1
        return super().run(*args, **kwargs)


def _subcommand(args: Sequence[str]) -> str:
    i = 0
    while i < len(args) and args[i] == "-c":
        i += 2
    return args[i] if i < len(args) else "?"


@dataclass
class Scenario:
    variant: str
    n: int
    edits: list[list[tuple[int, int]]]  # per branch: (file index, line) pairs it changes
    sources: list[Source]


@dataclass
class Sample:
    seconds: float
    tree: str
    calls: Counter[str]
    merge_tree_runs: int = 0
    worktree_seconds: float = 0.0


def file_path(index: int) -> str:
    return f"d{index // 100:03d}/s{index // 10 % 10}/f{index % 10}.txt"


def file_lines(index: int) -> list[str]:
    return [f"{file_path(index)} line {k}\n" for k in range(LINES)]


def plan_edits(n: int, files: int, overlap: bool) -> list[list[tuple[int, int]]]:
    """3 distinct files per branch, spread over the tree; with ``overlap``, round(N/6) pairs share one."""
    stride = files // (3 * n)
    edits = [[(3 * b * stride + k * stride, OWN_LINE) for k in range(3)] for b in range(n)]
    if overlap:
        for first in range(round(n / 6)):
            second = first + n // 2
            shared = edits[first][0][0]
            edits[first][0] = (shared, FIRST_LINE)
            edits[second][0] = (shared, SECOND_LINE)
    return edits


def _data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}\n"


def fast_import_stream(files: int, scenarios: Sequence[Scenario]) -> bytes:
    """One base commit with ``files`` files on main, and every scenario's branches off it."""
    out = ["commit refs/heads/main\nmark :1\n", f"committer bench <bench@localhost> {STAMP}\n", _data("base")]
    out += [f"M 100644 inline {file_path(i)}\n{_data(''.join(file_lines(i)))}" for i in range(files)]
    for scenario in scenarios:
        for b, edits in enumerate(scenario.edits):
            name = f"{scenario.variant}-{scenario.n}/{b:02d}"
            out += [f"commit refs/heads/{name}\n", f"committer bench <bench@localhost> {STAMP}\n",
                    _data(f"task {name}"), "from :1\n"]
            for index, line in edits:
                lines = file_lines(index)
                lines[line] = f"{name} changed line {line}\n"
                out.append(f"M 100644 inline {file_path(index)}\n{_data(''.join(lines))}")
    return "".join(out).encode()


def build_repository(root: Path, files: int, sizes: Sequence[int]) -> tuple[CountingGit, str, list[Scenario]]:
    """A bare repository built by one ``fast-import``: far faster than writing and adding 5,000 files."""
    if files < 3 * max(sizes):
        raise SystemExit(f"--files must be at least {3 * max(sizes)}")
    scenarios = [Scenario(variant, n, plan_edits(n, files, variant == "overlap"), [])
                 for variant in ("disjoint", "overlap") for n in sizes]
    root.mkdir()
    git = CountingGit(root)
    git.run("init", "-q", "--bare", "-b", "main")
    git.run("config", "gc.auto", "0")  # an auto-gc inside a timed `git merge` would be noise, not merging
    git.run("fast-import", "--quiet", input=fast_import_stream(files, scenarios))
    refs = dict(line.split() for line in git.text("for-each-ref", "--format=%(refname:short) %(objectname)",
                                                  "refs/heads/").splitlines())
    for scenario in scenarios:
        names = [f"{scenario.variant}-{scenario.n}/{b:02d}" for b in range(scenario.n)]
        # Each task's start commit is known, as coordination/scheduling/landing.py passes it (fork_point=start_sha).
        scenario.sources = [Source(name, refs[name], fork_point=refs["main"]) for name in names]
    return git, refs["main"], scenarios


def run_converge(git: CountingGit, base: str, sources: Sequence[Source], work: Path) -> Sample:
    """(a) converge() plus the compare-and-swap of the target ref, as dagmerge lands a result."""
    ref = "refs/heads/target"
    git.run("update-ref", ref, base)
    git.calls.clear()
    started = time.perf_counter()
    result = converge(git, base, sources)
    git.update_ref(ref, result.head, base)
    seconds = time.perf_counter() - started
    calls = Counter(git.calls)
    if not result.clean or len(result.order) != len(sources):
        raise RuntimeError(f"converge did not merge every source: pending {result.pending}")
    return Sample(seconds, git.tree_of(result.head), calls, result.merge_tree_runs)


def run_converge_unknown_forks(git: CountingGit, base: str, sources: Sequence[Source], work: Path) -> Sample:
    """(a) for sources without a fork point: converge() then finds each by ``merge-base``."""
    return run_converge(git, base, [replace(s, fork_point=None) for s in sources], work)


def run_chain(git: CountingGit, base: str, sources: Sequence[Source], work: Path) -> Sample:
    """(b) the floor for an in-memory merge: one merge-tree and one commit-tree per source, nothing else."""
    git.calls.clear()
    started = time.perf_counter()
    head = base
    for source in sources:
        tree = git.text("merge-tree", "--write-tree", head, source.sha).splitlines()[0]
        head = git.commit_tree(tree, [head, source.sha], f"Merge {source.name}\n")
    seconds = time.perf_counter() - started
    calls = Counter(git.calls)
    return Sample(seconds, git.tree_of(head), calls)


def run_checkout(git: CountingGit, base: str, sources: Sequence[Source], work: Path) -> Sample:
    """(c) a worktree and one ``git merge`` per branch in it; --no-ff so every branch gets a merge commit."""
    tree_dir = work / "worktree"
    started = time.perf_counter()
    git.run("worktree", "add", "--quiet", "--detach", str(tree_dir), base)
    checked_out = time.perf_counter()
    git.calls.clear()
    for source in sources:
        git.run("merge", "--quiet", "--no-ff", "--no-edit", source.name, cwd=tree_dir)
    seconds = time.perf_counter() - checked_out
    calls = Counter(git.calls)
    tree = git.text("rev-parse", "HEAD^{tree}", cwd=tree_dir)
    git.run("worktree", "remove", "--force", str(tree_dir))
    return Sample(seconds, tree, calls, worktree_seconds=checked_out - started)


METHODS: dict[str, Callable[[CountingGit, str, Sequence[Source], Path], Sample]] = {
    "a": run_converge,
    "a0": run_converge_unknown_forks,
    "b": run_chain,
    "c": run_checkout,
}


def measure(git: CountingGit, base: str, scenario: Scenario, runs: int, work: Path
            ) -> dict[str, list[Sample]]:
    """Alternate the methods, rotating their order every run, after one untimed warm-up round."""
    samples: dict[str, list[Sample]] = {key: [] for key in METHODS}
    for run in range(runs + 1):
        keys = list(METHODS)
        keys = keys[run % len(keys):] + keys[: run % len(keys)]
        for key in keys:
            sample = METHODS[key](git, base, scenario.sources, work)
            if run:
                samples[key].append(sample)
    trees = {s.tree for per_method in samples.values() for s in per_method}
    if len(trees) != 1:
        raise RuntimeError(f"{scenario.variant} N={scenario.n}: the methods disagree on the result: {trees}")
    return samples


def median(samples: Sequence[Sample], attribute: str = "seconds") -> float:
    return statistics.median(getattr(s, attribute) for s in samples)


def report(results: Sequence[tuple[Scenario, dict[str, list[Sample]]]]) -> None:
    header = (f"{'variant':<9}{'N':>4}{'(a) conv':>10}{'(b) chain':>11}{'(c) merge':>11}{'(c) wt add':>12}"
              f"{'mt runs(a)':>12}{'procs a/b':>11}{'a/b':>7}{'c/a':>7}{'(c+wt)/a':>10}"
              f"{'(a) no fp':>11}{'procs':>7}{'a0/b':>7}")
    print(header)
    print("-" * len(header))
    for scenario, samples in results:
        a, b, c, a0 = (median(samples[key]) for key in ("a", "b", "c", "a0"))
        wt = median(samples["c"], "worktree_seconds")
        first_a = samples["a"][0]
        procs = f"{first_a.calls.total()}/{samples['b'][0].calls.total()}"
        print(f"{scenario.variant:<9}{scenario.n:>4}{a:>10.3f}{b:>11.3f}{c:>11.3f}{wt:>12.3f}"
              f"{first_a.merge_tree_runs:>12}{procs:>11}{a / b:>6.2f}x{c / a:>6.2f}x{(c + wt) / a:>9.2f}x"
              f"{a0:>11.3f}{samples['a0'][0].calls.total():>7}{a0 / b:>6.2f}x")
    print("\nSeconds are medians.")
    print("  (a)        converge() + update-ref, fork points given as coordination/scheduling/landing.py gives them")
    print("  (a) no fp  the same without fork points: converge() runs one merge-base per source")
    print("  (b)        N x merge-tree --write-tree + commit-tree, no scoring")
    print("  (c)        N x `git merge --no-ff --no-edit` in a worktree; wt add: `git worktree add`, not in c/a")
    print(f"  overlap    round(N/6) pairs of branches (i, i+N/2) share a file, changed on lines {FIRST_LINE} "
          f"and {SECOND_LINE}: merges cleanly")
    print("Goals: a/b <= 1.5x, c/a >= 4x. procs: git subprocesses; those of (a) by subcommand:")
    for scenario, samples in results:
        calls = ", ".join(f"{name} {count}" for name, count in samples["a"][0].calls.most_common())
        print(f"  {scenario.variant:<9}N={scenario.n:<3} {calls}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000, help="files in the base commit")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per method (medians are reported)")
    parser.add_argument("--n", type=int, nargs="+", default=[16, 32], help="task branch counts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dagmerge-bench-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        git, base, scenarios = build_repository(work / "repo.git", args.files, args.n)
        print(f"{git.text('version')}, {os.cpu_count()} CPUs; {args.files} files, {args.runs} runs; "
              f"repository built in {time.perf_counter() - started:.2f}s\n")
        report([(scenario, measure(git, base, scenario, args.runs, work)) for scenario in scenarios])


if __name__ == "__main__":
    main()
