"""Running untrusted code: confined as this machine allows, bounded, and nothing left behind.

``run_confined`` is the one way a task command, a verify command or the agent is started: bubblewrap
when ``Isolation`` says it works (otherwise the caller must have chosen trusted mode), the environment
policy, the limits, output passed on in chunks up to a cap, and the whole process group killed at the
end, at the timeout or when ``stop`` is set.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from merges.engine.isolation import Isolation, wrap
from merges.engine.processes import (
    Limits,
    _children,
    _has_exited,
    _PidsCgroup,
    check_io_allowed,
    kill_process_group,
    process_environment,
)

# Runs before bwrap, so no Python code runs between fork and exec in the (threaded) worker: it joins the
# run's pids cgroup, lowers the limits and becomes the command (125: no limits, 127: no command).
_LIMITS_SHIM = """\
import os, resource, select, signal, sys, time
procs, nproc, fsize, alive, within, _, *argv = sys.argv[1:]
try:
    if procs:
        with open(procs, "w") as f:
            f.write("0")
    if int(nproc):
        resource.setrlimit(resource.RLIMIT_NPROC, (int(nproc), int(nproc)))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize), int(fsize)))
except OSError as exc:
    sys.stderr.write(f"dagmerge: cannot set the run's limits: {exc}\\n")
    sys.exit(125)
child = os.fork() if alive else 0
if child == 0:
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"cannot start {argv[0]!r}: {exc.strerror}\\n")
        os._exit(127)
try:  # woken the moment the command ends, not at the next check of the alive file
    ended = select.poll()
    ended.register(os.pidfd_open(child), select.POLLIN)
    wait = ended.poll
except (AttributeError, OSError):  # a kernel before 5.3
    wait = lambda ms: time.sleep(ms / 1000)
while True:
    done, status = os.waitpid(child, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
        sys.exit(128 - code if code < 0 else code)
    try:
        stale = time.time() - os.stat(alive).st_mtime > float(within)
    except OSError:
        stale = True
    if stale:
        sys.stderr.write("dagmerge: the run's lease was not renewed in time; stopping it\\n")
        os.killpg(0, signal.SIGKILL)
    wait(200)
"""


@dataclass
class ProcessResult:
    exit_code: int | None  # None: killed at the timeout, or stopped
    output_tail: str
    timed_out: bool
    duration_s: float
    stopped: bool = False
    output_capped: bool = False  # more than Limits.output_bytes was written; the rest was not passed on


def run_confined(argv: Sequence[str], *, isolation: Isolation, workdir: Path, extra_env: Mapping[str, str],
        timeout: float, writable: Sequence[Path] = (), readonly: Sequence[Path] = (), hide: Sequence[Path] = (),
        network: bool = False, limits: Limits | None = None, on_output: Callable[[str], None] | None = None,
        stop: threading.Event | None = None, tail_bytes: int = 64 * 1024,
        alive_file: Path | None = None, alive_within: float = 0.0) -> ProcessResult:
    """Run ``argv`` confined as ``isolation`` allows, within ``limits``; nothing it started outlives it.

    With ``alive_file``, a watchdog outside the worker (the shim, in the run's own session) kills the run
    when the file is older than ``alive_within`` seconds: the owner's heartbeat touches it on every lease
    renewal, so a worker that is stopped (SIGSTOP) or cut off from the database cannot leave its command
    running past its lease while the sweep hands the task to another run.

    bwrap's options reach it through a memfd (``--args``), not its command line: /proc/<pid>/cmdline is
    readable by every user of the machine, and the options hold the environment (the agent's API key).
    In trusted mode the command runs as it is, with the same environment policy and limits; its process
    group is still killed at the end, but a daemon that called ``setsid`` escapes unless a pids cgroup
    holds the run. Output (stdout and stderr together) goes to ``on_output`` in chunks, up to the cap.
    """
    limits = limits or Limits()
    check_io_allowed()
    started = time.monotonic()
    env = process_environment(extra_env)
    command = list(argv)
    pass_fds: tuple[int, ...] = ()
    if isolation.isolated:
        wrapped = wrap(argv, workdir=workdir, writable=writable, readonly=readonly, hide=hide, network=network,
                       env=env, tmp_bytes=limits.tmp_bytes, bwrap=isolation.bwrap)
        options = wrapped[1:len(wrapped) - len(argv) - 1]
        fd = os.memfd_create("dagmerge-bwrap-args")
        os.write(fd, b"".join(option.encode() + b"\0" for option in options))
        os.lseek(fd, 0, os.SEEK_SET)
        command, pass_fds = [isolation.bwrap, "--args", str(fd), "--", *argv], (fd,)
    try:
        group = _PidsCgroup.create(limits.processes) if isolation.processes == "cgroup" else None
    except OSError as exc:  # refuse rather than run unbounded
        return ProcessResult(125, f"dagmerge: cannot create the run's pids cgroup: {exc}\n", False, 0.0)
    nproc = limits.processes if isolation.processes == "rlimit" else 0
    shim = [sys.executable or "python3", "-I", "-S", "-c", _LIMITS_SHIM,
            str(group.procs) if group else "", str(nproc), str(limits.file_bytes),
            str(alive_file or ""), str(alive_within), "--"]
    try:
        proc = subprocess.Popen([*shim, *command], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=pass_fds)
    except OSError as exc:
        if group:
            group.close()
        return ProcessResult(127, f"cannot start {argv[0]!r}: {exc.strerror}\n", False, 0.0)
    finally:
        for fd in pass_fds:
            os.close(fd)
    tail = bytearray()
    capped = threading.Event()

    def pump() -> None:
        stream = proc.stdout
        assert stream is not None
        passed = 0
        # Popen(stdout=PIPE) opens a BufferedReader; typeshed types it IO[bytes], which has no read1.
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            tail.extend(chunk)
            del tail[:-tail_bytes]
            if passed < limits.output_bytes:
                chunk = chunk[: limits.output_bytes - passed]
                passed += len(chunk)
                if on_output:
                    on_output(chunk.decode(errors="replace"))
            elif not capped.is_set():
                capped.set()
                if on_output:
                    on_output(f"\n[dagmerge: output past {limits.output_bytes} bytes is not kept]\n")

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = started + timeout
    timed_out = stopped = False
    with _ExitWatch(proc.pid) as exited:
        while not _has_exited(proc):
            if stop is not None and stop.is_set():
                stopped = True
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
            exited.wait(min(0.05, max(deadline - time.monotonic(), 0.0)))
    # PID 1 of a sandbox first: its death reaches bwrap only once the kernel has killed every process of
    # the namespace, so nothing of the run is left when this function returns.
    for pid in _children(proc.pid) if isolation.isolated else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kill_process_group(proc, limits.grace_s)
    if group:
        group.close()
    reader.join(timeout=5)
    return ProcessResult(
        exit_code=None if timed_out or stopped else proc.returncode,
        output_tail=tail.decode(errors="replace"),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
        stopped=stopped,
        output_capped=capped.is_set(),
    )


class _ExitWatch:
    """Waits for a child to exit without reaping it (a zombie keeps its pid, the group id, from reuse):
    a pidfd wakes the wait as the child ends, where a sleep between checks would add its length to every
    run. Without pidfds (a kernel before 5.3) the wait is a plain sleep."""

    def __init__(self, pid: int):
        self._poll: select.poll | None = None
        self._fd = -1
        with contextlib.suppress(AttributeError, OSError):
            self._fd = os.pidfd_open(pid)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)

    def __enter__(self) -> _ExitWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)

    def wait(self, seconds: float) -> None:
        if self._poll is None:
            time.sleep(seconds)
        else:
            self._poll.poll(seconds * 1000)
