"""Benchmark the ownership-claims check a task makes before it starts, on a large repository.

    .venv/bin/python bench/claims.py [--files 100000] [--holders 20] [--runs 5]

``overlapping_claims`` compares a candidate's patterns with every held claim by automaton and, for each
pair that can overlap, names an existing file both match (else a path they could share). The baseline, timed
in the same run, is the plain way to give the same answer: the same automaton per pair, then a scan of the
file list for each overlapping pair. Both must give the same overlaps. Prints medians and the ratio
baseline / dagmerge (goal: at least 1, and the check well under a second at 100,000 files).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

from coordination.domain.globs import common_path, compile_glob  # noqa: E402
from coordination.domain.ownership import Overlap, overlapping_claims  # noqa: E402

CANDIDATE = ["pkg3/**/*.py", "**/file7.py"]


def layout(files: int, holders: int) -> tuple[list[str], dict[str, list[str]]]:
    paths = [f"pkg{i % 100}/mod{i // 100}/file{i}.py" for i in range(files)]
    held = {f"T{n}": [f"pkg{n}/**", f"pkg{n + 50}/mod1/*.py"] for n in range(holders)}
    return paths, held


def pair_by_pair(candidate: Sequence[str], held: Mapping[str, Sequence[str]], files: Sequence[str]) -> list[Overlap]:
    """The baseline: each pair that can overlap scans the whole file list for a file both patterns match."""
    found = []
    for holder, patterns in held.items():
        for a in candidate:
            for b in patterns:
                common = common_path(*sorted((a, b)))
                if common is None:
                    continue
                ra, rb = compile_glob(a).regex, compile_glob(b).regex
                real = [path for path in files if ra.fullmatch(path) and rb.fullmatch(path)]
                found.append(Overlap(holder, a, b, min(real) if real else common))
    return found


def timed(run: Callable[[], list[Overlap]], runs: int) -> tuple[float, list[Overlap]]:
    seconds: list[float] = []
    result: list[Overlap] = []
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--holders", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    files, held = layout(args.files, args.holders)
    ours, found = timed(lambda: overlapping_claims(CANDIDATE, held, files), args.runs)
    base, expected = timed(lambda: pair_by_pair(CANDIDATE, held, files), args.runs)
    if found != expected:
        sys.exit(f"the answers differ:\n  dagmerge {found}\n  baseline {expected}")
    print(f"{args.files} files, {args.holders} holders, {len(found)} overlaps (median of {args.runs} runs)")
    print(f"  dagmerge overlapping_claims  {ours * 1000:8.1f} ms")
    print(f"  baseline pair by pair        {base * 1000:8.1f} ms")
    print(f"  ratio baseline / dagmerge    {base / ours:8.2f}x")


if __name__ == "__main__":
    main()
