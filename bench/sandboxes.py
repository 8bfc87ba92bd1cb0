"""Sandboxes: what preparing and cleaning up a task's checkout costs, against ``git worktree add`` + ``remove``.

    .venv/bin/python bench/sandboxes.py [--files 5000] [--rounds 15] [--json FILE]

A repository of ``--files`` files (about 2.5 kB each, in folders of ten) is generated in a temp dir with one
``git fast-import``, with a chain of commits each changing ten files (the integration head moving on, as it
does in a ticket); the workspace holds a bare clone of it, as dagmerge's does. Each round times three ways of
giving a task a checkout at the next commit of the chain and taking it away, one after the other so that
they share the machine's load:

- **worktree**: ``git worktree add --detach`` and ``git worktree remove --force`` on the bare clone;
- **folder**: ``LocalSandbox.prepare`` + ``close`` without a pool (a new repository borrowing the clone's
  objects, removed at the end: what dagmerge did before the pool);
- **pool**: the same with a pool of one slot, reused from round to round (``sandboxes/pool.py``).

Between preparing and cleaning up, untimed, each does what a task does: changes a tracked file, writes an
untracked one and an ignored build folder. The first round (which builds the pool's slot) is left out of
the medians and printed apart. Goal (issue 13): pool ≤ 1/3 of worktree.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project is not installed

from coordination.running.sandboxes.local import LocalSandbox  # noqa: E402
from coordination.running.sandboxes.pool import SandboxPool  # noqa: E402
from merges.engine.git import Git  # noqa: E402
from merges.engine.isolation import Isolation  # noqa: E402

COMMITS = 6  # the chain of start commits the rounds walk through
CHANGED_PER_COMMIT = 10
STAMP = "1700000000 +0000"


def file_path(index: int) -> str:
    return f"d{index // 100:03d}/s{index // 10 % 10}/f{index % 10}.py"


def file_text(index: int, version: int = 0) -> str:
    return "".join(f"# {file_path(index)}, version {version}: line {k} of some ordinary source text\n"
                   for k in range(36))


def generate(path: Path, files: int) -> list[str]:
    """The repository and its chain of commits (one fast-import); returns the chain's commits, oldest first."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    stream = []

    def blob(text: str) -> None:
        data = text.encode()
        stream.append(b"data %d\n%s\n" % (len(data), data))

    stream.append(f"commit refs/heads/main\nmark :1\ncommitter bench <bench@example.com> {STAMP}\n".encode())
    blob("base")
    for index in range(files):
        stream.append(f"M 100644 inline {file_path(index)}\n".encode())
        blob(file_text(index))
    stream.append(b"M 100644 inline .gitignore\n")
    blob("build/\n")
    for n in range(1, COMMITS):
        stream.append(f"commit refs/heads/main\nmark :{n + 1}\ncommitter bench <bench@example.com> {STAMP}\n".encode())
        blob(f"step {n}")
        stream.append(f"from :{n}\n".encode())
        for k in range(CHANGED_PER_COMMIT):
            index = (n * 977 + k * 131) % files
            stream.append(f"M 100644 inline {file_path(index)}\n".encode())
            blob(file_text(index, n))
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True)
    log = subprocess.run(["git", "-C", str(path), "rev-list", "--reverse", "main"], capture_output=True, text=True,
                         check=True)
    return log.stdout.split()


def act_as_a_task(workdir: Path) -> None:
    """A tracked file changed, an untracked file, an ignored build folder: what the clean-up must undo."""
    with open(workdir / file_path(0), "a") as handle:
        handle.write("# changed by the task\n")
    (workdir / "notes.txt").write_text("a new file\n")
    (workdir / "build").mkdir()
    for k in range(20):
        (workdir / "build" / f"out{k}.o").write_bytes(b"\0" * 4096)


class Clock:
    """Wall time per step, and the CPU time of a whole round (this process and the git processes it ran):
    on a busy machine the wall clock is mostly waiting for a core or the disk, the CPU time much less so."""

    def __init__(self) -> None:
        self.cpu = 0.0

    def __call__(self, action: Callable[[], object]) -> float:
        started, cpu = time.perf_counter(), _cpu()
        action()
        self.cpu += _cpu() - cpu
        return time.perf_counter() - started


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Ways:
    def __init__(self, work: Path, clone: Git):
        self.work, self.clone = work, clone
        self.pool = SandboxPool(work / "pool", 1)
        self.scrubbed = 0  # rounds after which the slot was left fit for reuse

    def worktree(self, start: str) -> tuple[float, float, float]:
        path, timed = self.work / "worktree", Clock()
        add = timed(lambda: self.clone.run("worktree", "add", "-q", "--detach", str(path), start))
        act_as_a_task(path)
        return add, timed(lambda: self.clone.run("worktree", "remove", "--force", str(path))), timed.cpu

    def sandbox(self, start: str, pool: SandboxPool | None) -> tuple[float, float, float]:
        box, timed = LocalSandbox(self.clone, self.work / "folder", contextlib.nullcontext,
                                  isolation=Isolation("trusted", "bench"), trusted=True, pool=pool), Clock()
        prepare = timed(lambda: box.prepare("refs/heads/bench-task", start))
        act_as_a_task(box.workdir)
        close = timed(box.close)
        self.scrubbed += pool is not None and (box.root / "clean").exists()
        return prepare, close, timed.cpu


def measure(files: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="dagmerge-bench-sandboxes-") as tmp:
        work = Path(tmp)
        chain = generate(work / "clone.git", files)
        ways = Ways(work, Git(work / "clone.git"))
        samples: dict[str, list[tuple[float, float, float]]] = {"worktree": [], "folder": [], "pool": []}
        for round_ in range(rounds + 1):
            start = chain[round_ % len(chain)]
            samples["worktree"].append(ways.worktree(start))
            samples["folder"].append(ways.sandbox(start, None))
            samples["pool"].append(ways.sandbox(start, ways.pool))
    figures: dict = {"files": files, "rounds": rounds, "load": Path("/proc/loadavg").read_text().split()[:3],
                     "first_pool_round_ms": 1000 * sum(samples["pool"][0][:2]), "pool_scrubbed": ways.scrubbed}
    for way, values in samples.items():
        kept = values[1:]
        figures[way] = {"setup_ms": 1000 * statistics.median(s for s, _, _ in kept),
                        "cleanup_ms": 1000 * statistics.median(c for _, c, _ in kept),
                        "total_ms": 1000 * statistics.median(s + c for s, c, _ in kept),
                        "cpu_ms": 1000 * statistics.median(cpu for _, _, cpu in kept)}
    for way in ("pool", "folder"):
        figures[f"{way}_over_worktree"] = figures[way]["total_ms"] / figures["worktree"]["total_ms"]
        figures[f"{way}_over_worktree_cpu"] = figures[way]["cpu_ms"] / figures["worktree"]["cpu_ms"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    figures = measure(args.files, args.rounds)
    print(f"{args.files} files, medians of {args.rounds} rounds (ms), load {' '.join(figures['load'])}")
    print(f"{'way':10} {'setup':>8} {'clean-up':>9} {'total':>8}  × worktree  {'CPU':>8}  × worktree")
    for way in ("worktree", "folder", "pool"):
        row, base = figures[way], figures["worktree"]
        print(f"{way:10} {row['setup_ms']:8.1f} {row['cleanup_ms']:9.1f} {row['total_ms']:8.1f}  "
              f"{row['total_ms'] / base['total_ms']:9.2f}  {row['cpu_ms']:8.1f}  {row['cpu_ms'] / base['cpu_ms']:9.2f}")
    verdict = "met" if figures["pool_over_worktree"] <= 1 / 3 else "NOT met"
    print(f"pool / worktree = {figures['pool_over_worktree']:.3f} (goal ≤ 0.333: {verdict}; CPU time "
          f"{figures['pool_over_worktree_cpu']:.3f}); "
          f"the pool's first round, which builds the slot: {figures['first_pool_round_ms']:.0f} ms; "
          f"slot left fit for reuse after {figures['pool_scrubbed']} of {args.rounds + 1} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
