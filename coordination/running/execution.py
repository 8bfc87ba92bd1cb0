"""Running one task: claim it under a lease, run its executor in a sandbox, record the result.

Agent tasks can run for hours, and a broker redelivers a message whose ack is late (Redis: after
``visibility_timeout``) while the first run is still going. So a run holds a lease in the database,
taken by conditional UPDATE and renewed by a heartbeat; a delivery that finds a live lease leaves.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, close_old_connections, connection, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from coordination.domain import ownership
from coordination.domain.budget import llm_settings
from coordination.domain.tokens import ticket_token
from coordination.models import Event, OwnershipClaim, Task, Ticket
from coordination.running import workspace
from coordination.running.claude_executor import run_claude_task
from coordination.running.leases import TRANSIENT, Heartbeat, Lease
from coordination.running.llm_budget import reserved_budget
from coordination.running.sandboxes.base import ProcessResult, Sandbox, UnreadableFile
from coordination.running.sandboxes.local import LocalSandbox
from coordination.running.sandboxes.pool import SandboxPool
from merges.engine.isolation import Isolation
from merges.engine.processes import process_environment

log = logging.getLogger(__name__)

LOG_FLUSH_SECONDS = 1.0
MAX_RESULT_BYTES = 1 << 20  # $DAGMERGE_RESULT is read into memory and stored in a row: bounded before reading
DEADLOCK = "40P01"  # PostgreSQL's SQLSTATE for a transaction it rolled back to break a deadlock
DEADLOCK_RETRIES = (0.01, 0.05, 0.2, None)  # pause before each next try; None: the last


@dataclass
class Outcome:
    status: str  # "succeeded" | "failed"
    head_sha: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    log_tail: str = ""


@dataclass
class Claimed:
    """A task this worker claimed, and the lease it holds on it."""

    task: Task
    lease: Lease


def run_task(task_id: int) -> bool:
    """Claim, run and record; True when this run recorded the outcome (what follows, the landing, is the
    caller's: ``scheduling.relay``)."""
    claimed = claim_task(task_id)
    return claimed is not None and carry_out(claimed)


def claim_task(task_id: int) -> Claimed | None:
    """Claim a ready task under a new lease; None when another run has it or it is not ready."""
    lease = task_lease(task_id)
    task = claim(task_id, lease.owner)
    return Claimed(task, lease) if task is not None else None


def claim_within(task: Task) -> Claimed | None:
    """``claim_task`` in the caller's transaction: ``advance``'s (its ``Take``), which just made the task
    ready holding the ticket's row, so the task and ticket it read are as claimed (not read again)."""
    lease = task_lease(task.pk)
    claimed = _claim_in_transaction(task.pk, lease.owner, read=task)
    return Claimed(claimed, lease) if claimed is not None else None


def carry_out(claimed: Claimed) -> bool:
    """Run a claimed task and record its outcome under the lease; True when this run recorded it. The
    heartbeat renews the lease until the outcome is recorded: the database may be away for a moment when
    the run ends (a PostgreSQL restart), and a result written only once the lease had lapsed would be lost
    while the sweep ran the task a second time."""
    task, lease = claimed.task, claimed.lease
    with lease.heartbeat(name=f"task-{task.pk}") as heartbeat:
        outcome = _run(task, heartbeat)
        if outcome is None:
            return False
        outcome.result["worker"] = lease.owner
        recorded = heartbeat.while_held(lambda: finish(task.pk, lease.owner, outcome))
    if recorded is None:
        log.warning("task %s: %s; its outcome is dropped", task.pk, heartbeat.reason)
    return bool(recorded)


def _run(task: Task, heartbeat: Heartbeat) -> Outcome | None:
    """The run's outcome; None when dagmerge's own database went away during it, which says nothing
    about the task: the run is given up and its lease left to lapse, and the sweep runs the task again."""
    try:
        return execute(task, heartbeat)
    except TRANSIENT as exc:
        log.warning("task %s: the database went away during the run (%s); the sweep runs it again", task.pk, exc)
        return None
    except Exception as exc:  # a sandbox or git failure must end the task, not leave it running
        log.exception("task %s crashed", task.pk)
        return Outcome("failed", error=f"{type(exc).__name__}: {exc}")


def task_lease(task_id: int) -> Lease:
    """A run's lease on its task: renewable only while the task is running (a cancel ends it)."""
    return Lease(Task, task_id, settings.DAGMERGE_LEASE_SECONDS, held_while={"status": "running"})


def claim(task_id: int, owner: str) -> Task | None:
    """Take a ready task (conditional UPDATE); None when another run has it or it is not ready.

    A deadlock PostgreSQL broke by rolling this side back is tried again: nothing of it was kept, and the
    UPDATE is conditional. Given up, the task would wait ready for the sweep's resend, minutes later."""
    for wait in DEADLOCK_RETRIES:
        try:
            return _claim(task_id, owner)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK or wait is None:
                raise
            log.warning("task %s: claim deadlocked, trying again", task_id)
            time.sleep(wait)
    return None  # not reached: the last try returns or raises


def _claim(task_id: int, owner: str) -> Task | None:
    with transaction.atomic():
        return _claim_in_transaction(task_id, owner)


def _claim_in_transaction(task_id: int, owner: str, read: Task | None = None) -> Task | None:
    """ready → claimed → running in one conditional UPDATE, both moves recorded: the run starts from the
    ticket's head as it is now. ``read``: the task as its caller read it under the ticket's lock (its
    ticket with it), brought up to date instead of read again."""
    now = timezone.now()
    claimed = {"status": "running", "lease_owner": owner, "started_at": now, "updated_at": now, "error": "", "log": "",
               "lease_expires_at": now + timedelta(seconds=settings.DAGMERGE_LEASE_SECONDS)}
    taken = Task.objects.filter(pk=task_id, status="ready").update(
        **claimed, start_sha=Subquery(Ticket.objects.filter(pk=OuterRef("ticket_id")).values("head_sha")),
        attempts=F("attempts") + 1)
    if not taken:
        return None
    if read is None:
        task = Task.objects.select_related("ticket__repository").get(pk=task_id)
    else:
        task = read
        for name, value in claimed.items():
            setattr(task, name, value)
        task.start_sha, task.attempts = task.ticket.head_sha, task.attempts + 1
    Event.record_all(task.ticket, [(f"task.{new}", {"from": old, "to": new, **task.event_refs()})
                                   for old, new in (("ready", "claimed"), ("claimed", "running"))])
    OwnershipClaim.objects.bulk_create(OwnershipClaim(task=task, pattern=p) for p in task.owned_files)
    return task


def execute(task: Task, heartbeat: Heartbeat | None = None) -> Outcome:
    """Run the task in its sandbox; the heartbeat's ``lost`` stops it, its renewals keep it alive."""
    ticket = task.ticket
    stop = heartbeat.lost if heartbeat else None
    sandbox = make_sandbox(task)
    if heartbeat is not None and hasattr(sandbox, "mark_alive"):
        heartbeat.on_renewed = sandbox.mark_alive
    try:
        sandbox.prepare(task.ref, task.start_sha)
        context_path = sandbox.write_file("context.json", json.dumps(task_context(task), indent=2,
                                                                     default=str).encode())
        env = task_environment(task, sandbox, context_path)
        with LogStreamer(task.pk) as streamer:
            process, spend = run_executor(task, sandbox, env, streamer.append, stop)
        process.output_tail = storable(process.output_tail)
        head = sandbox.commit_all(f"{task.key}: {task.title}\n\ndagmerge ticket {ticket.pk}, task {task.pk}\n")
        result = {
            "exit_code": process.exit_code,
            "changed_files": sandbox.changed_files(task.start_sha),
            "head": head,
            "output_tail": process.output_tail[-4000:],
            "duration_s": round(process.duration_s, 3),
            "isolation": sandbox.isolation,
            **spend,
        }
        outside = ownership.violations(task.owned_files, result["changed_files"])
        if outside:
            result["ownership_violations"] = outside
        error = _process_error(task, process)
        try:
            result["data"] = _parse_result(sandbox.read_file("result.json", MAX_RESULT_BYTES))
        except UnreadableFile as exc:
            error = error or f"$DAGMERGE_RESULT {exc}"
        except ValueError as exc:
            error = error or str(exc)
        status = "failed" if error else "succeeded"
        return Outcome(status, head_sha=head, result=result, error=error, log_tail=process.output_tail)
    finally:
        sandbox.close()


def make_sandbox(task: Task) -> Sandbox:
    """The repository's sandbox backend: a confined local repository, or a Daytona sandbox (SDK on demand).

    A local sandbox is a slot of the repository's pool when one is free; otherwise a folder named after the
    task, not the attempt: a run's preparation removes whatever a dead run of the same task left behind."""
    ticket = task.ticket
    name = f"t{ticket.pk}-{task.key}"
    clone = workspace.clone_git(ticket.repository_id)

    def lock():
        return workspace.clone_lock(ticket.repository_id)

    if (ticket.sandbox_backend or ticket.repository.sandbox_backend) == "daytona":
        from coordination.running.sandboxes.daytona import DaytonaSandbox, reachable_url, settings_from_env

        return DaytonaSandbox(clone, settings_from_env(), lock, name=f"{name}-{task.attempts}",
                              clone_url=reachable_url(ticket.repository.url_or_path), clone_branch=ticket.base_branch)
    lease = settings.DAGMERGE_LEASE_SECONDS
    pool = SandboxPool(workspace.sandbox_pool_root(ticket.repository_id), settings.DAGMERGE_SANDBOX_POOL,
                       quiet_for=lease * 2 / 3)  # a dead holder's command is killed once 2/3 of the lease passed
    return LocalSandbox(clone, workspace.worktrees_root() / name, lock, isolation=Isolation.detect(),
                        trusted=settings.DAGMERGE_TRUSTED_CODE, hide=workspace.hidden_from_tasks(),
                        network=task.network or ticket.network, lease_seconds=lease, pool=pool)


def run_executor(task: Task, sandbox: Sandbox, env: dict[str, str], on_output,
                 stop: threading.Event | None = None) -> tuple[ProcessResult, dict]:
    """Run the task's executor; returns the process result and what it spent on the LLM."""
    timeout = task.timeout_seconds or settings.DAGMERGE_TASK_TIMEOUT
    if task.executor == "claude":
        if not isinstance(sandbox, LocalSandbox):
            return ProcessResult(2, "the claude executor runs in local sandboxes only\n", False, 0.0), {}
        with reserved_budget(task.ticket_id) as reservation:  # parallel agents share, never double, the budget
            run = run_claude_task(task.instructions, task_context(task), sandbox.workdir, env=env, timeout_s=timeout,
                                  settings=replace(llm_settings(), confinement=workspace.agent_confinement(
                                      readonly=[sandbox.clone.repo / "objects"], writable=[sandbox.scratch])),
                                  budget=reservation.budget,
                                  allow_bash=settings.DAGMERGE_CLAUDE_ALLOW_BASH, on_output=on_output)
            reservation.spend(run.invocations, run.cost_usd)
        return run.process, {"llm_invocations": run.invocations, "cost_usd": run.cost_usd, "summary": run.summary}
    try:
        argv = shlex.split(task.command)
    except ValueError as exc:
        return ProcessResult(2, f"cannot parse command: {exc}\n", False, 0.0), {}
    if not argv:
        return ProcessResult(2, "empty command\n", False, 0.0), {}
    return sandbox.run(argv, env, timeout, on_output, stop=stop), {}


def task_context(task: Task) -> dict[str, Any]:
    """What a task's command sees in ``$DAGMERGE_CONTEXT``: itself, its parents' results, the synthesis."""
    return {
        "ticket": {"id": task.ticket_id, "title": task.ticket.title, "branch": task.ticket.branch},
        "task": {"key": task.key, "title": task.title, "instructions": task.instructions},
        "parents": {p.key: p.result for p in task.depends_on.all()},
        "synthesis": task.synthesis_context,
    }


def task_environment(task: Task, sandbox: Sandbox, context_path: str) -> dict[str, str]:
    """A minimal environment: no secrets of the worker leak into a task's command."""
    return process_environment(dict(
        HOME=str(sandbox.scratch / "home"),
        TMPDIR=str(sandbox.scratch),
        DAGMERGE_TICKET=str(task.ticket_id),
        DAGMERGE_TASK=task.key,
        DAGMERGE_BRANCH=task.branch,
        DAGMERGE_CONTEXT=context_path,
        DAGMERGE_RESULT=str(sandbox.scratch / "result.json"),
        DAGMERGE_API_URL=f"{settings.DAGMERGE_API_URL}/api/tickets/{task.ticket_id}",
        DAGMERGE_TOKEN=ticket_token(task.ticket_id, task.ticket.token_nonce),
    ))


def _process_error(task: Task, process: ProcessResult) -> str:
    if process.stopped:
        return "stopped: the task was cancelled or another run took it over"
    if process.timed_out:
        return f"timed out after {task.timeout_seconds or settings.DAGMERGE_TASK_TIMEOUT} s"
    if process.exit_code:
        last = next((line for line in reversed(process.output_tail.splitlines()) if line.strip()), "")
        return f"command exited with status {process.exit_code}" + (f": {last.strip()}" if last else "")
    return ""


def _parse_result(data: bytes | None) -> Any:
    if data is None or not data.strip():
        return None
    try:
        parsed = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"$DAGMERGE_RESULT is not valid JSON: {exc}") from None
    if _holds_nul(parsed):
        raise ValueError("$DAGMERGE_RESULT holds a NUL character (\\u0000), which the database cannot store")
    return parsed


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(map(_holds_nul, value))


def storable(text: str) -> str:
    """Output as a text column can hold it: PostgreSQL refuses NUL, which a task may well print."""
    return text.replace("\0", "\ufffd")


def finish(task_id: int, owner: str, outcome: Outcome) -> bool:
    """Record the outcome if this run still holds the lease; False when it was taken away. Safe to try
    again after a database error: a try that was committed is recognised by the worker it names."""
    with transaction.atomic():
        # The ticket's row too: an advance under way reads the ticket's tasks in several statements and
        # must not see this one finish between them (it settled a ticket as failed with a join still to run).
        task = Task.objects.select_for_update(no_key=True).select_related("ticket").get(pk=task_id)
        if task.lease_owner != owner or task.status != "running":
            if task.status == outcome.status and (task.result or {}).get("worker") == owner:
                return True  # recorded by an earlier try whose commit went through but whose answer was lost
            log.warning("task %s: lease lost to %r, outcome dropped", task_id, task.lease_owner)
            return False
        task.transition(
            outcome.status, head_sha=outcome.head_sha, result=outcome.result, error=outcome.error,
            log=outcome.log_tail, finished_at=timezone.now(), lease_owner="", lease_expires_at=None,
        )
        task.claims.filter(released_at=None).update(released_at=timezone.now())
        outside = outcome.result.get("ownership_violations")
        if outside:
            Event.record(task.ticket, "task.ownership_violation", {**task.event_refs(), "files": outside})
    return True



class LogStreamer:
    """Appends a running command's output to Task.log about once a second, with a task.log event."""

    def __init__(self, task_id: int):
        self.task_id = task_id
        self._buffer: list[str] = []
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"log-{task_id}")

    def __enter__(self) -> LogStreamer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self._thread.join(timeout=10)

    def append(self, text: str) -> None:
        with self._lock:
            self._buffer.append(storable(text))

    def _loop(self) -> None:
        close_old_connections()
        try:
            while not self._stop_event.wait(LOG_FLUSH_SECONDS):
                self._flush()
            self._flush()
        finally:
            connection.close()

    def _flush(self) -> None:
        with self._lock:
            text, self._buffer = "".join(self._buffer), []
        if not text:
            return
        try:
            self._append(text)
        except DatabaseError as exc:  # kept for the next flush: a locked or restarting database is no reason to lose it
            log.warning("task %s: log not written yet (%s)", self.task_id, exc)
            connection.close()
            with self._lock:
                self._buffer.insert(0, text)

    def _append(self, text: str) -> None:
        with transaction.atomic():
            task = (Task.objects.select_for_update(no_key=True, of=("self",))
                    .select_related("ticket").get(pk=self.task_id))
            task.log = (task.log + text)[-64 * 1024 :]
            task.save(update_fields=["log", "updated_at"])
            Event.record(task.ticket, "task.log", {"task": task.key, "task_id": task.pk, "bytes": len(text)})
