"""The fault campaign's bench: tickets whose tasks leave a trace outside the repository, and the checks
run on each ticket once the faults are over.

A task's side effect is a line appended to an append-only log outside the repository (``effects.log``):
``start``, a ``tick`` every 0.2 s, ``end``, each with the ticket, the task key, a run id made by the run
and the time. The run id is also the task's result, so the result the database kept names exactly one
run: that run must appear once, complete, and no two runs of one task may have been running at once.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import socketserver
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from coordination.models import Join, Task, Ticket
from coordination.running import workspace
from merges.engine.git import Git
from merges.models import MergeAttempt
from tests.faults.processes import Service, celery_worker
from tests.faults.report import PROBLEM_KINDS

TICK_S = 0.2
GAP_S = 2.5  # a tick late by more than this is a run that was frozen, not a slow one
RECORDS: list[dict[str, Any]] = []  # every injected fault of this pytest session, for the summary


def fault_kills() -> int:
    """How many faults of each kind a test injects (DAGMERGE_FAULT_KILLS; CI runs a few)."""
    return int(os.environ.get("DAGMERGE_FAULT_KILLS", "2"))


def campaign_timeout() -> int:
    """The whole test's bound (pytest-timeout; the suite's 300 s fits a few faults, not twenty): every
    wait inside is bounded too, so this only catches what they do not."""
    return 120 + 150 * fault_kills()


def db(read: Callable[[], Any], timeout: float = 90) -> Any:
    """Run a database read, riding out a database restart (the campaign restarts PostgreSQL)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            close_old_connections()
            connection.close()
            time.sleep(0.5)


EFFECT = """
import json, os, socket, sys, time, uuid
port, ticks, files = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
run = uuid.uuid4().hex
def say(kind):
    line = f"{kind} {os.environ['DAGMERGE_TICKET']} {os.environ['DAGMERGE_TASK']} {run} {time.time():.6f}\\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(line.encode())
        s.recv(1)
say("start")
for _ in range(ticks):
    time.sleep(TICK_S)
    say("tick")
for name, text in files.items():
    with open(name, "w") as f:
        f.write(text + "\\n")
with open(os.environ["DAGMERGE_RESULT"], "w") as f:
    json.dump({"run": run}, f)
say("end")
""".replace("TICK_S", str(TICK_S))


def effect_task(key: str, effects: EffectLog, ticks: int, files: dict[str, str] | None = None, **spec: Any) -> dict:
    """A task whose side effect reaches ``effects`` over the network (a sandboxed task can write nothing
    outside its checkout); it writes ``files`` and returns its run id as its result."""
    argv = [sys.executable, "-I", "-c", EFFECT, str(effects.port), str(ticks), json.dumps(files or {})]
    return {"key": key, "title": f"Effect {key}", "command": shlex.join(argv), "network": True, **spec}


class EffectLog:
    """The append-only log of side effects: a TCP server in the test process appends every line a task
    sends (and answers one byte once it is written, so a task's line is kept before the task goes on).
    ``before_answer`` lets a test act at a moment of the task's own (e.g. its end) before it goes on."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.before_answer: Callable[[str], None] | None = None  # sees each line while its task waits
        log = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline()
                if not line.endswith(b"\n"):
                    return  # the task was killed while it sent it: that effect never happened
                with log._lock, open(log.path, "ab") as out:
                    out.write(line)
                if log.before_answer is not None:
                    log.before_answer(line.decode())
                self.wfile.write(b".")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True, name="effect-log").start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Run:
    starts: int = 0
    ends: int = 0
    times: list[float] = field(default_factory=list)  # every line's time: start, ticks, end

    @property
    def span(self) -> tuple[float, float]:
        return min(self.times), max(self.times)


def read_runs(log: Path) -> dict[tuple[int, str], dict[str, Run]]:
    """{(ticket, task key): {run id: Run}} from the effects log."""
    runs: dict[tuple[int, str], dict[str, Run]] = defaultdict(lambda: defaultdict(Run))
    if not log.exists():
        return runs
    for line in log.read_text().splitlines():
        kind, ticket, key, run, at = line.split()
        entry = runs[(int(ticket), key)][run]
        entry.starts += kind == "start"
        entry.ends += kind == "end"
        entry.times.append(float(at))
    return runs


def overlapping(runs: dict[str, Run]) -> list[tuple[str, str]]:
    """Pairs of runs of one task that were running at the same moment. A run is running between two of
    its own lines at most ``GAP_S`` apart; a longer silence is a run that did nothing (its worker was
    frozen), and a line of another run there does not count against it."""
    def running_at(run: Run, moment: float) -> bool:
        times = sorted(run.times)
        return moment in times or any(a < moment < b and b - a <= GAP_S for a, b in pairwise(times))

    found = []
    names = sorted(runs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if any(running_at(runs[a], t) for t in runs[b].times) or any(running_at(runs[b], t)
                                                                          for t in runs[a].times):
                found.append((a, b))
    return found


class Problems(dict):
    """Problems by kind (PROBLEM_KINDS), each a list of sentences."""

    def __init__(self):
        super().__init__({kind: [] for kind in PROBLEM_KINDS})

    def add(self, kind: str, text: str) -> None:
        self[kind].append(text)

    def any(self) -> bool:
        return any(self.values())


@dataclass
class Bench:
    """One test's installation: environment of the processes it starts, the effects log, its workers."""

    root: Path
    env: dict[str, str]
    backend: str
    rng: random.Random
    workers: list[Service] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    effects: EffectLog | None = None
    restarted: int = 0  # supervised processes started again during the last settled()

    def worker(self, name: str = "worker") -> Service:
        service = celery_worker(name, self.env, self.logs)
        service.start()
        self.workers.append(service)
        return service

    def settled(self, ticket_id: int, timeout: float, supervise: list[Service] = ()) -> tuple[str, float]:
        """Wait until the ticket is done and published (or ended otherwise); (status, seconds waited).
        A ``supervise``d process that exits meanwhile is started again, as systemd's Restart= would."""
        started = time.monotonic()
        self.restarted = 0
        deadline = started + timeout
        while True:
            status = db(lambda: ended(ticket_id))
            if status:
                return status, time.monotonic() - started
            if time.monotonic() > deadline:
                return db(lambda: Ticket.objects.get(pk=ticket_id).status), time.monotonic() - started
            for service in supervise:
                if service.proc is not None and service.proc.poll() is not None:
                    service.start()
                    self.restarted += 1
            time.sleep(0.2)

    def record(self, kind: str, ticket_id: int, problems: Problems, **facts: Any) -> dict:
        entry = {"backend": self.backend, "kind": kind, "ticket": ticket_id, **facts,
                 "problems": {k: v for k, v in problems.items() if v}}
        if problems.any():
            entry["story"] = story(ticket_id)
        RECORDS.append(entry)
        report = os.environ.get("DAGMERGE_FAULT_REPORT")
        if report:
            with open(report, "a") as out:
                out.write(json.dumps(entry) + "\n")
        return entry


def ended(ticket_id: int) -> str | None:
    """``done`` once the ticket is done and published, ``failed`` / ``cancelled``; None while in flight."""
    ticket = Ticket.objects.get(pk=ticket_id)
    if ticket.status == "done" and ticket.published_sha == ticket.head_sha:
        return "done"
    return ticket.status if ticket.status in ("failed", "cancelled") else None


def story(ticket_id: int) -> list[str]:
    """What happened to a ticket, from its events: for a fault that broke a promise."""
    from coordination.models import Event

    return [f"{e.created_at:%H:%M:%S.%f} {e.kind} " + json.dumps({k: v for k, v in e.payload.items()
                                                                  if k in ("task", "to", "error", "why", "outcome",
                                                                           "attempt_id", "sha")})
            for e in db(lambda: list(Event.objects.filter(ticket_id=ticket_id).exclude(kind="task.log")))]


def describe(ticket_id: int) -> str:
    """A ticket's state in one line, for a timeout's message."""
    ticket = db(lambda: Ticket.objects.get(pk=ticket_id))
    tasks = db(lambda: [(t.key, t.status, t.attempts, t.error[:200]) for t in Task.objects.filter(ticket=ticket)])
    joins = db(lambda: [(j.pk, j.status) for j in Join.objects.filter(ticket=ticket)])
    attempts = db(lambda: [(a.pk, a.status, a.error[:200]) for a in MergeAttempt.objects.filter(ticket=ticket)])
    return f"ticket {ticket_id} {ticket.status} {ticket.error[:200]!r}; tasks {tasks}; joins {joins}; merges {attempts}"


def ref_is_old_or_new(ticket_id: int) -> str:
    """Right after a fault: the ticket ref is the head the database knows, or a merge made on that head
    (the new head, whose attempt recorded it before the ref moved). Returns a problem, or ''."""
    ticket = db(lambda: Ticket.objects.get(pk=ticket_id))
    actual = workspace.clone_git(ticket.repository_id).rev_parse(ticket.ref)
    new = set(db(lambda: list(MergeAttempt.objects.filter(ticket_id=ticket_id, base_sha=ticket.head_sha)
                              .exclude(result_sha="").values_list("result_sha", flat=True))))
    if actual in {ticket.head_sha, *new}:
        return ""
    return f"ticket {ticket_id}: {ticket.ref} at {actual}, neither the old head {ticket.head_sha} nor a merge on it"


def check_ticket(bench: Bench, ticket_id: int, source: Path | str, expected: str = "done") -> Problems:
    """Everything the campaign promises about one ticket once its faults are over."""
    problems = Problems()
    ticket = db(lambda: Ticket.objects.select_related("repository").get(pk=ticket_id))
    if ticket.status != expected:
        kind = "failed" if ticket.status in ("failed", "cancelled") else "stuck"
        problems.add(kind, f"ticket {ticket_id} is {ticket.status}, not {expected}: {ticket.error}")
    runs = read_runs(bench.effects.path)
    clone = workspace.clone_git(ticket.repository_id)
    subjects = clone.text("log", "--format=%s", ticket.ref).splitlines()
    merges = clone.text("log", "--merges", "--format=%s", ticket.ref).splitlines()
    for task in db(lambda: list(Task.objects.filter(ticket=ticket))):
        _check_task(problems, ticket, task, runs.get((ticket_id, task.key), {}))
        merged = merges.count(f"Merge {task.branch}")
        if merged > 1:
            problems.add("duplicated", f"{task.branch} merged {merged} times into {ticket.branch}")
        commits = sum(s.startswith(f"{task.key}: ") for s in subjects)
        if commits > 1:
            problems.add("duplicated", f"{task.key}'s work is on {ticket.branch} {commits} times")
        if task.status == "succeeded" and task.landed and commits == 0:
            problems.add("lost", f"{task.key} landed but its commit is not on {ticket.branch}")
    actual = clone.rev_parse(ticket.ref)
    if actual != ticket.head_sha:
        problems.add("lost", f"{ticket.ref} at {actual} in the workspace, the ticket says {ticket.head_sha}")
    published = Git(_source_path(source)).rev_parse(ticket.ref)
    if expected == "done" and published != ticket.head_sha:
        problems.add("stuck", f"the source's {ticket.branch} is at {published}, not the head {ticket.head_sha}")
    if ticket.merge_lock_owner and ticket.status in ("done", "failed", "cancelled", "awaiting_review"):
        problems.add("left_behind", f"ticket {ticket_id} is {ticket.status} and its merge lease is still held "
                                    f"by {ticket.merge_lock_owner}")
    for join in db(lambda: list(Join.objects.filter(ticket=ticket, status__in=("merging", "synthesizing")))):
        problems.add("stuck", f"join → {join.continuation.key} still {join.status}")
    for attempt in db(lambda: list(MergeAttempt.objects.filter(ticket=ticket, status="running"))):
        problems.add("stuck", f"merge attempt #{attempt.pk} still running ({attempt.pending_action})")
    for leftover in lasting_leftovers(ticket.repository_id, source):
        problems.add("left_behind", leftover)
    return problems


def _check_task(problems: Problems, ticket: Ticket, task: Task, runs: dict[str, Run]) -> None:
    name = f"ticket {ticket.pk} task {task.key}"
    if task.status in ("claimed", "running", "ready"):
        problems.add("stuck", f"{name} is still {task.status}")
    elif task.status != "succeeded":
        problems.add("failed", f"{name} {task.status}: {task.error}")
    if task.lease_owner and task.status not in ("claimed", "running"):
        problems.add("left_behind", f"{name} is {task.status} with a live lease held by {task.lease_owner}")
    kept = ((task.result or {}).get("data") or {}).get("run")
    if task.status == "succeeded":
        run = runs.get(kept or "")
        if run is None:
            problems.add("lost", f"{name}: the kept result names run {kept!r}, which left no trace")
        elif run.starts != 1 or run.ends != 1:
            problems.add("duplicated", f"{name}: run {kept} started {run.starts} and ended {run.ends} times")
    for a, b in overlapping(runs):
        problems.add("duplicated", f"{name}: runs {a} and {b} were running at the same time")


def _source_path(source: Path | str) -> Path:
    return Path(str(source).removeprefix("file://"))


def lasting_leftovers(repository_id: int, source: Path, wait: float = 3.0) -> list[str]:
    """``leftovers`` still there ``wait`` seconds later: a git lock or a worktree of an operation under way
    at the first look (a publish the sweep sent again after an outage, say) is not left behind."""
    first = leftovers(repository_id, source)
    if not first:
        return []
    time.sleep(wait)
    return [leftover for leftover in leftovers(repository_id, source) if leftover in first]


def leftovers(repository_id: int, source: Path) -> list[str]:
    """Sandboxes, merge worktrees and git lock files nobody will remove."""
    found = []
    root = workspace.worktrees_root()
    if root.exists():
        found += [f"left in {root}: {entry.name}" for entry in sorted(root.iterdir())]
    clone = workspace.clone_path(repository_id)
    registered = Git(clone).text("worktree", "list", "--porcelain").count("worktree ") - 1
    if registered:
        found.append(f"{registered} worktree(s) still registered in the workspace clone")
    for repo in (clone, _source_path(source) / ".git"):
        found += [f"git lock file left: {path}" for path in repo.rglob("*.lock")]
        found += [f"unfinished push left: {path}" for path in (repo / "objects").glob("incoming-*")]
    return found


def in_flight_rows() -> list[str]:
    """Rows of any ticket still in a state some worker must be holding (the end of a test: nobody is)."""
    rows = [f"task {t.ticket_id}/{t.key} {t.status}" for t in Task.objects.filter(status__in=("claimed", "running"))]
    rows += [f"join {j.pk} merging" for j in Join.objects.filter(status="merging")]
    rows += [f"attempt {a.pk} running" for a in MergeAttempt.objects.filter(status="running")]
    return rows
