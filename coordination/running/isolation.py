"""Confining untrusted code — task commands, verify commands, the agent — with bubblewrap.

Everything dagmerge starts for code it did not write goes through this module: one environment policy
(``process_environment``), one sandbox command line (``wrap``), one way to end a run (``kill_process_group``)
and one set of resource bounds (``Limits``), so no runner can forget a piece. It uses the standard library
only — no Django, no other dagmerge module — so it can be tested with real processes and nothing else.

Why each part is there is written beside it; docs/security-isolation-notes.md lists the cases and tests.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["bubblewrap", "trusted"]
ProcessBound = Literal["cgroup", "rlimit", "none"]

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a task inherits from the worker: enough to find programs and print text, nothing that authenticates.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_V2_ROOT = Path("/sys/fs/cgroup")
_V1_PIDS = Path("/sys/fs/cgroup/pids")

# Runs before bwrap, so no Python code runs between fork and exec in the (threaded) worker: it joins the
# run's pids cgroup, lowers the limits and becomes the command (125: no limits, 127: no command).
_LIMITS_SHIM = """\
import os, resource, sys
procs, nproc, fsize, _, *argv = sys.argv[1:]
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
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    sys.stderr.write(f"cannot start {argv[0]!r}: {exc.strerror}\\n")
    sys.exit(127)
"""


@dataclass(frozen=True)
class Limits:
    """Resource bounds of one run.

    ``processes`` bounds a fork bomb. The kernel never applies RLIMIT_NPROC to real root — not even inside
    a user namespace — so as root the bound is a pids cgroup (v2, or v1's ``pids`` hierarchy); as another
    user it is RLIMIT_NPROC, which counts every process of that user on the machine. ``file_bytes`` is
    RLIMIT_FSIZE: no file the task writes grows past it (the writer gets SIGXFSZ). ``output_bytes`` is what
    the reader passes on from stdout/stderr; the rest is dropped (the tail is still kept), so 1 GB of
    output costs time until the timeout, not memory or log rows. ``tmp_bytes`` sizes the private /tmp,
    which is RAM.
    """

    processes: int = 512
    file_bytes: int = 1 << 30
    output_bytes: int = 16 << 20
    tmp_bytes: int = 512 << 20
    grace_s: float = 3.0


@dataclass(frozen=True)
class Isolation:
    """How runs are confined on this machine, and why not when they are not.

    ``mode`` is "bubblewrap" only when bwrap exists *and* a probe with the flags ``wrap`` uses succeeded;
    otherwise "trusted", with ``reason`` saying what failed. Callers refuse untrusted work in trusted mode
    unless the operator chose it, and show ``describe()`` on each task.
    """

    mode: Mode
    reason: str = ""
    bwrap: str = ""
    processes: ProcessBound = "none"

    @property
    def isolated(self) -> bool:
        return self.mode == "bubblewrap"

    @classmethod
    def detect(cls) -> Isolation:
        """Probe once per process (cached): the answer does not change while a worker runs."""
        return _detect()

    def describe(self) -> str:
        if self.isolated:
            return f"bubblewrap ({self.bwrap}); process count bounded by {self.processes}"
        return f"trusted: no isolation ({self.reason})"


@functools.cache
def _detect() -> Isolation:
    processes = _process_bound()
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Isolation("trusted", "bwrap not found on PATH (Debian: apt-get install bubblewrap)", "", processes)
    with tempfile.TemporaryDirectory(prefix="dagmerge-probe-") as probe:
        argv = wrap(["true"], workdir=Path(probe), env=process_environment({}), bwrap=bwrap)
        try:
            done = subprocess.run(argv, env=process_environment({}), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Isolation("trusted", f"bwrap cannot run: {exc}", bwrap, processes)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return Isolation("trusted", f"bwrap does not work here: {said[0]}", bwrap, processes)
    return Isolation("bubblewrap", "", bwrap, processes)


def process_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The one environment of every process dagmerge starts for untrusted code.

    Allow-list, not deny-list: the worker's environment holds ``ANTHROPIC_API_KEY``, ``DATABASE_URL``,
    ``DAGMERGE_SECRET_KEY`` and whatever the operator exported, and any of it a task could read would be
    committed or sent away. Only PATH, LANG, LC_ALL and TZ pass (PATH defaulted), plus ``extra``, which the
    caller names one by one. A bad name or a NUL byte is a programming error: ValueError.
    """
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    for name, value in extra.items():
        if not _ENV_NAME.match(name) or "\0" in value:
            raise ValueError(f"not an environment variable: {name!r}")
        env[name] = value
    return env


def wrap(argv: Sequence[str], *, workdir: Path, writable: Sequence[Path] = (), readonly: Sequence[Path] = (),
         hide: Sequence[Path] = (), network: bool = False, env: Mapping[str, str],
         tmp_bytes: int = Limits.tmp_bytes, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap command line that runs ``argv`` in ``workdir`` and lets it reach nothing else.

    Namespaces: user (the task's root is powerless outside), PID (it sees and signals only its own
    processes, and they all die with it), IPC, UTS, cgroup, and network unless ``network``. The root is
    read-only; ``workdir`` and ``writable`` are the only writable host paths, /tmp is private. ``hide``
    puts an empty read-only tmpfs over a directory (a file is covered by /dev/null): the workdir may lie
    inside a hidden directory (DAGMERGE_HOME/workspace/worktrees/<name>), so mounts are ordered by depth —
    a deeper mount always lands on top of a shallower one — and hidden directories are made read-only last
    (non-recursively, so the workdir bound inside stays writable). The task gets exactly ``env``.
    """
    kinds: dict[Path, str] = {Path("/tmp"): "tmp"}
    for kind, paths in (("hide", hide), ("readonly", readonly), ("writable", [*writable, workdir])):
        for path in map(_absolute, paths):
            if kinds.setdefault(path, kind) != kind:
                raise ValueError(f"{path} is both {kinds[path]} and {kind}")
    order = {"tmp": 0, "hide": 1, "readonly": 2, "writable": 3}
    mounts: list[str] = []
    remount: list[str] = []
    for path, kind in sorted(kinds.items(), key=lambda item: (len(item[0].parts), order[item[1]])):
        if kind == "tmp":
            mounts += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]
        elif kind != "hide":
            mounts += ["--ro-bind" if kind == "readonly" else "--bind", str(path), str(path)]
        elif not path.exists() or _nearest_mount(path, kinds) == "hide":
            continue  # nothing there to see, or already under a hidden directory
        elif path.is_dir():
            mounts += ["--size", str(64 << 10), "--tmpfs", str(path)]
            remount += ["--remount-ro", str(path)]
        else:
            mounts += ["--ro-bind", "/dev/null", str(path)]
    command = [
        bwrap,
        "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        *([] if network else ["--unshare-net"]),
        "--disable-userns",      # no nested user namespace in which the task would regain capabilities
        "--cap-drop", "ALL",     # as root bwrap keeps every capability in the namespace: umount, remount rw
        "--die-with-parent", "--new-session", "--hostname", "dagmerge-sandbox",
        "--ro-bind", "/", "/",
        "--proc", "/proc",
        # bwrap covers /proc/sys only when the directory itself is writable; as uid 0 the files inside are
        # (kernel.core_pattern runs a program as root), so cover it whatever bwrap decides.
        "--ro-bind", "/proc/sys", "/proc/sys", "--ro-bind-try", "/proc/sysrq-trigger", "/proc/sysrq-trigger",
        "--dev", "/dev", "--size", str(tmp_bytes), "--tmpfs", "/dev/shm",  # RAM too: bounded like /tmp
    ]
    command += [*mounts, *remount, "--chdir", str(_absolute(workdir)), "--clearenv"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    return [*command, "--", *argv]


def kill_process_group(proc: subprocess.Popen, grace: float) -> None:
    """End ``proc``'s process group: SIGTERM, up to ``grace`` seconds for it to go, SIGKILL, then reap.

    The SIGKILL goes to the group even when the leader has exited: a child that ignores SIGTERM outlives
    it. Callers should leave the leader unreaped until then (``run`` polls with ``WNOWAIT``): a zombie's
    pid — the group id — cannot be handed to an unrelated process that the SIGKILL would then hit. Under
    bwrap the group is bwrap itself; its death kills PID 1 of the sandbox (``--die-with-parent``), and the
    kernel kills every process of a PID namespace whose PID 1 dies — ``setsid`` and double forks included.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    else:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _group_alive(pgid: int) -> bool:  # zombies do not count: they only wait to be reaped
    return any(pgrp == pgid and state not in "ZX" for _pid, state, _ppid, pgrp in _processes())


def _children(parent: int) -> list[int]:
    return [pid for pid, _state, ppid, _pgrp in _processes() if ppid == parent]


def _processes() -> list[tuple[int, str, int, int]]:
    """(pid, state, ppid, pgrp) of every process, from /proc/<pid>/stat."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            state, ppid, pgrp = stat[stat.rindex(")") + 2:].split(" ", 3)[:3]
            found.append((int(entry.name), state, int(ppid), int(pgrp)))
    return found


@dataclass
class Completed:
    exit_code: int | None  # None: killed at the timeout, or stopped
    output_tail: str
    timed_out: bool
    duration_s: float
    stopped: bool = False
    output_capped: bool = False  # more than Limits.output_bytes was written; the rest was not passed on


def run(argv: Sequence[str], *, isolation: Isolation, workdir: Path, extra_env: Mapping[str, str],
        timeout: float, writable: Sequence[Path] = (), readonly: Sequence[Path] = (), hide: Sequence[Path] = (),
        network: bool = False, limits: Limits | None = None, on_output: Callable[[str], None] | None = None,
        stop: threading.Event | None = None, tail_bytes: int = 64 * 1024) -> Completed:
    """Run ``argv`` confined as ``isolation`` allows, within ``limits``; nothing it started outlives it.

    bwrap's options reach it through a memfd (``--args``), not its command line: /proc/<pid>/cmdline is
    readable by every user of the machine, and the options hold the environment (the agent's API key).
    In trusted mode the command runs as it is, with the same environment policy and limits; its process
    group is still killed at the end, but a daemon that called ``setsid`` escapes unless a pids cgroup
    holds the run. Output (stdout and stderr together) goes to ``on_output`` in chunks, up to the cap.
    """
    limits = limits or Limits()
    started = time.monotonic()
    env = process_environment(extra_env)
    command, pass_fds = list(argv), ()
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
        return Completed(125, f"dagmerge: cannot create the run's pids cgroup: {exc}\n", False, 0.0)
    nproc = limits.processes if isolation.processes == "rlimit" else 0
    shim = [sys.executable or "python3", "-I", "-S", "-c", _LIMITS_SHIM,
            str(group.procs) if group else "", str(nproc), str(limits.file_bytes), "--"]
    try:
        proc = subprocess.Popen([*shim, *command], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                pass_fds=pass_fds)
    except OSError as exc:
        if group:
            group.close()
        return Completed(127, f"cannot start {argv[0]!r}: {exc.strerror}\n", False, 0.0)
    finally:
        for fd in pass_fds:
            os.close(fd)
    tail = bytearray()
    capped = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        passed = 0
        for chunk in iter(lambda: proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
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
    while not _has_exited(proc):
        if stop is not None and stop.is_set():
            stopped = True
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0.0)))
    # PID 1 of a sandbox first: its death reaches bwrap only once the kernel has killed every process of
    # the namespace, so nothing of the run is left when this function returns.
    for pid in _children(proc.pid) if isolation.isolated else ():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    kill_process_group(proc, limits.grace_s)
    if group:
        group.close()
    reader.join(timeout=5)
    return Completed(
        exit_code=None if timed_out or stopped else proc.returncode,
        output_tail=tail.decode(errors="replace"),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
        stopped=stopped,
        output_capped=capped.is_set(),
    )


def _has_exited(proc: subprocess.Popen) -> bool:
    """Whether the leader has exited, leaving it unreaped (a zombie keeps its pid from reuse)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def _absolute(path: Path) -> Path:
    """The real path: bwrap mounts onto what a path names, and a symlinked DAGMERGE_HOME must still hide."""
    return Path(os.path.realpath(path))


def _nearest_mount(path: Path, kinds: Mapping[Path, str]) -> str | None:
    """The kind of the deepest mount above ``path``: what the sandbox shows there before ``path`` is mounted."""
    above = [parent for parent in path.parents if parent in kinds]
    return kinds[max(above, key=lambda parent: len(parent.parts))] if above else None


def _process_bound() -> ProcessBound:
    if _PidsCgroup.parent() is not None:
        return "cgroup"
    return "rlimit" if os.geteuid() != 0 else "none"


class _PidsCgroup:
    """A pids cgroup holding one run: the only fork-bomb bound the kernel applies to root."""

    def __init__(self, path: Path):
        self.path = path
        self.procs = path / "cgroup.procs"

    @staticmethod
    @functools.cache
    def parent() -> Path | None:
        """dagmerge's cgroup with the pids controller, created once; None where it cannot be (no cgroupfs,
        read-only in a container, controller not delegable)."""
        try:
            v2 = _V2_ROOT / "cgroup.controllers"
            if v2.exists() and "pids" in v2.read_text().split():
                parent = _V2_ROOT / "dagmerge"
                parent.mkdir(exist_ok=True)
                for node in (_V2_ROOT, parent):
                    if "pids" not in (node / "cgroup.subtree_control").read_text().split():
                        (node / "cgroup.subtree_control").write_text("+pids")
                return parent
            if (_V1_PIDS / "cgroup.procs").exists():
                parent = _V1_PIDS / "dagmerge"
                parent.mkdir(exist_ok=True)
                return parent
        except OSError:
            return None
        return None

    @classmethod
    def create(cls, limit: int) -> _PidsCgroup:
        parent = cls.parent()
        if parent is None:
            raise OSError("no pids cgroup on this machine")
        group = cls(parent / f"run-{uuid.uuid4().hex}")
        group.path.mkdir()
        try:
            (group.path / "pids.max").write_text(str(limit))
        except OSError:
            group.close()
            raise
        return group

    def close(self) -> None:
        """Kill whatever is left in the cgroup (in trusted mode: daemons that left the process group),
        then remove it; the kernel frees a cgroup only once its last process is reaped."""
        for _ in range(100):
            try:
                pids = [int(pid) for pid in self.procs.read_text().split()]
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)
