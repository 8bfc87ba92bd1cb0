"""Scale: a 1,000-task ticket on the embedded default and on PostgreSQL + Redis, against git alone.

    .venv/bin/python bench/scale.py [--small] [--runs 3] [--width 100] [--depth 10] [--json FILE]
        [--backends embedded,servers] [--database-url URL] [--redis-url URL]

The ticket: ``--width`` root tasks, then ``--depth - 1`` layers of ``--width`` joins, each of 2 or 3 tasks
of the layer before; every task is a shell command writing one file of its own (and claiming it).

- **embedded**: ``dagmerge run --concurrency 2`` (SQLite, jobs on two threads of one process).
- **servers**: PostgreSQL + Redis, a ``git`` worker and an ``agents`` worker (Celery, 2 slots each), the
  ticket handed over with ``dagmerge submit``. ``--database-url`` (default: $DATABASE_URL) and
  ``--redis-url`` ($REDIS_URL) are wiped before each run: give them a database and a Redis db of their own.
- **baseline**: the same git work with the same parallelism (two threads) and no database: per task
  ``worktree add`` at the integration head, the command, ``add -A`` + ``commit``, ``worktree remove``;
  per landing ``merge-tree --write-tree`` + ``commit-tree`` per source, one merge at a time, the ref moved
  by compare-and-swap.

Printed per backend: wall time (ticket submitted → done; the baseline from its first task) and its ratio
to the baseline; release latency (parent finished → child claimed) p50 / p95 on a 20-task chain; time in
``advance`` per event at N = 10, 100, 1,000 (a ticket of N tasks built in the database, a run of
"task finished" and "merge landed" events, each timed; the full recomputation beside it); each worker
process's peak RSS and its growth from the first 10 % of the tasks finished to the last. With ``--runs``
above 1 the medians are printed (of a ratio: the median of each run's ratio to its own baseline).
``--small`` (a 30-task ticket, N = 10 and 100) is the CI smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the project (and its tests' factories) without installing
BIN = Path(sys.executable).parent
CHAIN = 20


def layered(width: int, depth: int) -> dict[str, list[str]]:
    """{key: parents}: ``width`` roots, then layers whose tasks join 2 or 3 tasks of the layer before."""
    parents_of: dict[str, list[str]] = {f"L0-{i}": [] for i in range(width)}
    for layer in range(1, depth):
        for i in range(width):
            fan_in = 3 if i % 2 else 2
            parents_of[f"L{layer}-{i}"] = sorted({f"L{layer - 1}-{(i + k) % width}" for k in range(fan_in)})
    return parents_of


def spec(repository: Path, parents_of: dict[str, list[str]], title: str) -> dict:
    return {"title": title, "repository": str(repository), "base_branch": "main", "tasks": [
        {"key": key, "depends_on": parents, "command": _command(key), "owned_files": [f"out/{key}.txt"]}
        for key, parents in parents_of.items()]}


def _command(key: str) -> str:
    return f"sh -c 'mkdir -p out && echo {key} > out/{key}.txt'"


def chain(length: int) -> dict[str, list[str]]:
    return {f"c{i}": [f"c{i - 1}"] if i else [] for i in range(length)}


def source_repository(path: Path) -> Path:
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "README.md").write_text("# scale\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "initial"], check=True)
    return path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the baseline: git alone ------------------------------------------------------------------------

class Baseline:
    """The git work of the layered ticket (roots, then joins), two threads, one merge at a time, no database.

    As in dagmerge, a task starts at the integration head once its parents' work is on it: the last source
    of a join to finish merges the join's sources (those not merged yet), then its continuation starts;
    a task no join waits for is merged on its own.
    """

    def __init__(self, repository: Path, parents_of: dict[str, list[str]], workdir: Path):
        self.clone = workdir / "clone.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(repository), str(self.clone)], check=True)
        self.worktrees = workdir / "worktrees"
        self.parents_of = parents_of
        self.children: dict[str, list[str]] = {key: [] for key in parents_of}
        for key, parents in parents_of.items():
            assert len(parents) != 1, "the baseline knows roots and joins"
            for parent in parents:
                self.children[parent].append(key)
        self.done: set[str] = set()
        self.started: set[str] = set()
        self.landed: set[str] = set()
        self.head = self.git("rev-parse", "main")
        # git's own locks make concurrent worktree bookkeeping fail: serialized, as dagmerge does
        self.merge_lock, self.state_lock, self.worktree_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.finished = threading.Event()
        self.errors: list[BaseException] = []

    def git(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", *args],
                              cwd=cwd or self.clone, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def run(self) -> float:
        started = time.monotonic()
        for key, parents in self.parents_of.items():
            if not parents:
                self.pool.submit(self.task, key)
        self.finished.wait()
        self.pool.shutdown()
        if self.errors:
            raise self.errors[0]
        return time.monotonic() - started

    def task(self, key: str) -> None:
        try:
            workdir = self.worktrees / key
            with self.worktree_lock:
                self.git("worktree", "add", "-q", "-b", f"task/{key}", str(workdir), self.head)
            subprocess.run(["sh", "-c", f"mkdir -p out && echo {key} > out/{key}.txt"], cwd=workdir, check=True)
            self.git("add", "-A", cwd=workdir)
            self.git("commit", "-q", "-m", key, cwd=workdir)
            with self.worktree_lock:
                self.git("worktree", "remove", "--force", str(workdir))
            if not self.children[key]:
                self.land([key])
            for child in self.children[key]:
                with self.state_lock:
                    self.done.add(key)
                    parents = self.parents_of[child]
                    due = all(p in self.done for p in parents) and child not in self.started
                    if due:
                        self.started.add(child)
                if due:
                    self.land(parents)
                    self.pool.submit(self.task, child)
        except BaseException as exc:  # reported by run()
            self.errors.append(exc)
            self.finished.set()

    def land(self, keys: list[str]) -> None:
        with self.merge_lock:
            for key in keys:
                if key in self.landed:
                    continue
                tree = self.git("merge-tree", "--write-tree", self.head, f"task/{key}").splitlines()[0]
                new = self.git("commit-tree", tree, "-p", self.head, "-p", f"task/{key}", "-m", f"merge {key}")
                self.git("update-ref", "refs/heads/ticket", new, self.head if self.landed else "")
                self.head = new
                self.landed.add(key)
            if len(self.landed) == len(self.parents_of):
                self.finished.set()


# --- one backend, in a process of its own (Django is set up once per process) ----------------------

def backend_run(args: argparse.Namespace) -> dict:
    """Runs in a child process whose environment selects the backend; returns the figures."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dagmerge_site.settings")
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if args.backend == "servers":
        call_command("flush", interactive=False, verbosity=0)
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    work = Path(os.environ["DAGMERGE_HOME"])
    repository = source_repository(work / "source")
    figures = {"advance": advance_per_event(repository, args.sizes)}
    workers = start_workers(work) if args.backend == "servers" else {}
    try:
        figures["chain"] = run_ticket(args, work, repository, chain(CHAIN), "chain", workers)
        figures["ticket"] = run_ticket(args, work, repository, layered(args.width, args.depth), "ticket", workers)
    finally:
        stop_groups(workers.values())
    return figures


def run_ticket(args, work: Path, repository: Path, parents_of: dict[str, list[str]], name: str,
               workers: dict[str, subprocess.Popen]) -> dict:
    """Hand the ticket over (``dagmerge run`` embedded, ``dagmerge submit`` to the servers), watch it to
    its end, sampling the workers' memory; the figures come from the rows."""
    from coordination.models import Event, Task, Ticket
    from merges.models import MergeAttempt

    spec_path = work / f"{name}.json"
    spec_path.write_text(json.dumps(spec(repository, parents_of, name)))
    command = [str(BIN / "dagmerge"), "run", str(spec_path), "--concurrency", "2"] if not workers else [
        str(BIN / "dagmerge"), "submit", str(spec_path)]
    cpu_before = cpu_of_children() + sum(cpu_of_processes(tree(p.pid)) for p in workers.values())
    runner = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    watched = workers or {"dagmerge run": runner}
    samples: list[tuple[int, dict[str, int]]] = []  # (tasks finished, {process: RSS kB})
    ticket = None
    while True:
        ticket = ticket or Ticket.objects.filter(title=name).order_by("-pk").first()
        finished = Task.objects.filter(ticket=ticket, finished_at__isnull=False).count() if ticket else 0
        samples.append((finished, {label: rss for worker, process in watched.items()
                                   for label, rss in rss_of_tree(worker, process.pid, bool(workers)).items()}))
        status = Ticket.objects.values_list("status", flat=True).get(pk=ticket.pk) if ticket else None
        if status in ("done", "failed", "cancelled", "awaiting_review") or runner.poll() not in (None, 0):
            break
        time.sleep(0.5)
    runner.wait()
    cpu = cpu_of_children() + sum(cpu_of_processes(tree(p.pid)) for p in workers.values()) - cpu_before
    if ticket is None or Ticket.objects.get(pk=ticket.pk).status != "done":
        raise SystemExit(f"{name}: the ticket did not finish: {runner.stderr.read()[-2000:]}")
    ticket.refresh_from_db()
    tasks = {t.key: t for t in Task.objects.filter(ticket=ticket)}
    release = [(tasks[k].started_at - max(tasks[p].finished_at for p in parents)).total_seconds()
               for k, parents in parents_of.items() if parents]
    merges = list(MergeAttempt.objects.filter(ticket=ticket).values_list("duration_ms", flat=True))
    stored = Event.objects.filter(ticket=ticket, kind="task.created").order_by("-pk").first().created_at
    return {"tasks": len(tasks), "wall_s": (ticket.finished_at - ticket.created_at).total_seconds(), "cpu_s": cpu,
            "submit_s": (stored - ticket.created_at).total_seconds(),
            "release_p50_ms": 1000 * percentile(release, 50), "release_p95_ms": 1000 * percentile(release, 95),
            # where the time goes: a task's run (claimed → finished), its command alone, a merge
            "task_ms": 1000 * statistics.median((t.finished_at - t.started_at).total_seconds() for t in tasks.values()),
            "command_ms": 1000 * statistics.median(t.result["duration_s"] for t in tasks.values()),
            "merges": len(merges), "merge_ms": statistics.median(merges),
            "memory": memory_figures(samples, len(tasks))}


def memory_figures(samples: list[tuple[int, dict[str, int]]], total: int) -> dict[str, dict]:
    """Per worker process: peak RSS (MB) and its growth from a tenth of the tasks finished to the end."""
    figures = {}
    for label in sorted({label for _, rss in samples for label in rss}):
        series = [(finished, rss[label]) for finished, rss in samples if label in rss]
        early = next((r for f, r in series if f >= total // 10), series[0][1])
        figures[label] = {"peak_mb": max(r for _, r in series) / 1024,
                          "growth_pct": 100 * (series[-1][1] - early) / early}
    return figures


def rss_of_tree(worker: str, pid: int, pool: bool) -> dict[str, int]:
    """RSS (kB) of a worker process and, with ``pool``, of its pool processes, not of the commands they run."""
    pids = tree(pid) if pool else [pid]
    found = {}
    for i, process in enumerate(pids):
        status = _read_status(process)
        if status is not None:
            found[worker if i == 0 else f"{worker} pool {i}"] = status["VmRSS"]
    return found


def tree(pid: int) -> list[int]:
    """A worker and its Python children (a Celery worker's pool processes, same name), worker first."""
    own = _read_status(pid)
    if own is None:
        return []
    children = sorted(int(c) for t in Path(f"/proc/{pid}/task").glob("*") for c in _children(t))
    return [pid] + [c for c in children if (_read_status(c) or {}).get("Name") == own["Name"]]


def _children(task_dir: Path) -> list[str]:
    try:
        return (task_dir / "children").read_text().split()
    except OSError:
        return []


def cpu_of_processes(pids: Iterable[int]) -> float:
    """CPU seconds the processes used, with the children they have reaped (git, bubblewrap, the commands)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def cpu_of_children() -> float:
    """CPU seconds of this process's children that have ended (and of everything they had reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _read_status(pid: int) -> dict | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    if "VmRSS" not in fields:
        return None
    return {"Name": fields["Name"].strip(), "VmRSS": int(fields["VmRSS"].split()[0])}


def start_workers(work: Path) -> dict[str, subprocess.Popen]:
    """The README's servers: one worker for merges and scheduling, one for task runs, two slots each."""
    workers = {}
    for queue in ("git", "agents"):
        log = open(work / f"worker-{queue}.log", "w")  # kept open for the worker's life
        workers[f"{queue} worker"] = (subprocess.Popen(
            [str(BIN / "celery"), "-A", "dagmerge_site", "worker", "-Q", queue, "-c", "2", "-n", f"{queue}@%h",
             "--loglevel", "WARNING"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    from celery import current_app

    deadline = time.monotonic() + 60
    while len(current_app.control.ping(timeout=1.0) or []) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not start; see worker-*.log in " + str(work))
    return workers


def stop_groups(processes: Iterable[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def advance_per_event(repository: Path, sizes: list[int], events: int = 20) -> dict[str, dict[str, float]]:
    """Milliseconds in ``advance`` per event, median, in tickets of each size (layers of joins, every task
    claiming a file); the full recomputation of the same state beside it."""
    from coordination.domain import dispatch
    from coordination.models import Repository, Task
    from coordination.running import workspace
    from coordination.scheduling import scheduler
    from tests import factories

    class Discard:
        def submit(self, job, object_id: int) -> None:
            pass

    dispatch.use(Discard())
    source, _ = Repository.objects.get_or_create(url_or_path=str(repository), defaults={"name": "scale"})
    head = workspace.sync_clone(source.pk, str(repository), "main")
    scheduler.repository_files(source.pk, head)  # cached: the full recomputation runs in a savepoint (no git)
    results = {}
    for size in sizes:
        width = min(100, max(5, size // 10))
        ticket = factories.make_ticket(f"advance {size}", repository=source, base_sha=head, head_sha=head,
                                       status="running")
        tasks = factories.make_dag(ticket, layered(width, size // width), owned_files=["out/x.txt"])
        first = [tasks[f"L0-{i}"].pk for i in range(width)][:events]
        Task.objects.filter(pk__in=first).update(status="running")
        results[str(size)] = time_events(ticket, first)
        ticket.delete()
    return results


def time_events(ticket, first: list[int]) -> dict[str, float]:
    """Tasks of the first layer finish one by one (their joins start once all sources have), then the
    joins' merges land one by one (their continuations are released). Each event is timed on the
    per-event path, and the full recomputation of the same state (rolled back, so both see the same rows)."""
    from django.db import transaction

    from coordination.models import Join, Task
    from coordination.scheduling import scheduler

    timings: dict[str, list[float]] = {"incremental": [], "full": []}

    def timed(changed: list[int]) -> None:
        with transaction.atomic():
            savepoint = transaction.savepoint()
            started = time.perf_counter()
            scheduler.advance(ticket.pk)
            timings["full"].append(time.perf_counter() - started)
            transaction.savepoint_rollback(savepoint)
        started = time.perf_counter()
        scheduler.advance(ticket.pk, changed)
        timings["incremental"].append(time.perf_counter() - started)

    for task in first:
        Task.objects.filter(pk=task).update(status="succeeded")
        timed([task])
    for join in Join.objects.filter(ticket=ticket, status="synthesizing")[:len(first)]:
        sources = list(join.sources.values_list("pk", flat=True))
        Task.objects.filter(pk__in=sources).update(landed=True)
        Join.objects.filter(pk=join.pk).update(status="merged")
        timed(sources)
    return {name: 1000 * statistics.median(values) for name, values in timings.items()}


# --- the orchestra ------------------------------------------------------------------------------------

def run_backend(args: argparse.Namespace, backend: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"dagmerge-scale-{backend}-"))
    env = {**os.environ, "DAGMERGE_HOME": str(home), "DAGMERGE_LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "dagmerge_site.settings"}
    for name in ("DATABASE_URL", "REDIS_URL", "DAGMERGE_DISPATCH"):
        env.pop(name, None)
    if backend == "servers":
        env.update(DATABASE_URL=args.database_url, REDIS_URL=args.redis_url)
    command = [sys.executable, __file__, "--backend", backend, "--width", str(args.width), "--depth",
               str(args.depth), "--sizes", ",".join(map(str, args.sizes))]
    try:
        out = subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"{backend} run failed:\n{exc.stderr[-4000:]}") from None
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return json.loads(out.stdout.splitlines()[-1])


def run_baseline(args: argparse.Namespace) -> tuple[float, float]:
    """Wall and CPU seconds (git, the commands, and this process's threads) of the baseline."""
    with tempfile.TemporaryDirectory(prefix="dagmerge-scale-baseline-") as tmp:
        repository = source_repository(Path(tmp) / "source")
        baseline = Baseline(repository, layered(args.width, args.depth), Path(tmp))
        own = resource.getrusage(resource.RUSAGE_SELF)
        cpu = cpu_of_children() + own.ru_utime + own.ru_stime
        wall = baseline.run()
        own = resource.getrusage(resource.RUSAGE_SELF)
        return wall, cpu_of_children() + own.ru_utime + own.ru_stime - cpu


def summarize(runs: list[dict]) -> dict:
    """Medians over the runs of every figure."""
    def median(path):
        values = [_dig(run, path) for run in runs]
        return statistics.median(values) if all(v is not None for v in values) else None

    summary = {"load": [run["load"] for run in runs], "baseline_s": median(("baseline_s",)),
               "baseline_cpu_s": median(("baseline_cpu_s",))}
    for backend in runs[0]["backends"]:
        b = ("backends", backend)
        figures = {
            "wall_s": median((*b, "ticket", "wall_s")),
            "cpu_s": median((*b, "ticket", "cpu_s")),
            "chain_release_p50_ms": median((*b, "chain", "release_p50_ms")),
            "chain_release_p95_ms": median((*b, "chain", "release_p95_ms")),
            "ticket_release_p50_ms": median((*b, "ticket", "release_p50_ms")),
            **{what: median((*b, "ticket", what))
               for what in ("submit_s", "task_ms", "command_ms", "merges", "merge_ms")},
            "advance_ms": {size: {path: median((*b, "advance", size, path)) for path in ("incremental", "full")}
                           for size in runs[0]["backends"][backend]["advance"]},
            "memory": {},
        }
        # Each run's ratio to the baseline measured in that run, then their median: a run on a busier
        # machine is slower on both sides, which the median wall over the median baseline does not cancel.
        figures["ratio"] = statistics.median(
            _dig(run, (*b, "ticket", "wall_s")) / run["baseline_s"] for run in runs)
        figures["cpu_ratio"] = statistics.median(
            _dig(run, (*b, "ticket", "cpu_s")) / run["baseline_cpu_s"] for run in runs)
        for label in runs[0]["backends"][backend]["ticket"]["memory"]:
            figures["memory"][label] = {what: median((*b, "ticket", "memory", label, what))
                                        for what in ("peak_mb", "growth_pct")}
        summary[backend] = figures
    return summary


def _dig(data, path):
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def report(summary: dict, args: argparse.Namespace) -> None:
    tasks = args.width * args.depth
    print(f"\n{tasks}-task ticket ({args.width} × {args.depth}), {args.runs} run(s); load before each run: "
          f"{', '.join(summary['load'])}")
    print(f"baseline (git alone, 2 threads): {summary['baseline_s']:.1f} s, CPU {summary['baseline_cpu_s']:.1f} s")
    for backend in args.backends:
        f = summary[backend]
        print(f"\n{backend}: {f['wall_s']:.1f} s = {f['ratio']:.2f} × baseline (goal ≤ 1.3), of which "
              f"{f['submit_s']:.1f} s storing the ticket; CPU {f['cpu_s']:.1f} s = {f['cpu_ratio']:.2f} × "
              f"baseline's{' (workers only: PostgreSQL and Redis not counted)' if backend == 'servers' else ''}")
        print(f"  release latency on a {CHAIN}-task chain: p50 {f['chain_release_p50_ms']:.0f} ms, "
              f"p95 {f['chain_release_p95_ms']:.0f} ms (goal p50 < {50 if backend == 'servers' else 150} ms); "
              f"in the big ticket p50 {f['ticket_release_p50_ms']:.0f} ms (waiting for a free slot included)")
        print(f"  a task's run {f['task_ms']:.0f} ms (its command {f['command_ms']:.0f} ms), "
              f"{f['merges']:.0f} merges of {f['merge_ms']:.0f} ms (medians)")
        sizes = list(f["advance_ms"])
        print("  advance per event (ms, per-event path / full recomputation): " + ", ".join(
            f"N={s}: {f['advance_ms'][s]['incremental']:.1f} / {f['advance_ms'][s]['full']:.1f}" for s in sizes)
              + f"; ratio {sizes[-1]}/{sizes[0]}: "
              f"{f['advance_ms'][sizes[-1]]['incremental'] / f['advance_ms'][sizes[0]]['incremental']:.2f} (goal ≤ 2)")
        for label, m in f["memory"].items():
            print(f"  {label}: peak RSS {m['peak_mb']:.0f} MB, growth {m['growth_pct']:+.1f} % "
                  f"(goal < 250 MB, < 10 %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="a 30-task ticket, N = 10 and 100 (CI smoke test)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--sizes", default="10,100,1000", help="ticket sizes for the advance measurement")
    parser.add_argument("--backends", default="embedded,servers")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument("--json", help="write every run's figures and the medians to this file")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # inside the child process of one backend
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if args.small:
        args.width, args.depth, args.sizes = 10, 3, [10, 100]
    if args.backend:
        print(json.dumps(backend_run(args)))
        return
    args.backends = [b for b in args.backends.split(",") if b]
    if "servers" in args.backends and not (args.database_url.startswith("postgres") and args.redis_url):
        raise SystemExit("servers: give --database-url postgres://... and --redis-url (both are wiped), "
                         "or --backends embedded")
    runs = []
    for number in range(args.runs):
        wall, cpu = run_baseline(args)
        run = {"load": loadavg(), "baseline_s": wall, "baseline_cpu_s": cpu, "backends": {}}
        for backend in args.backends:
            run["backends"][backend] = run_backend(args, backend)
        runs.append(run)
        print(f"run {number + 1}/{args.runs}: {json.dumps(run)}", file=sys.stderr, flush=True)
    summary = summarize(runs)
    report(summary, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
