"""Starting processes: one environment policy, one process-group kill, one set of resource bounds, and
one guard against I/O inside a database transaction.

Every process dagmerge starts for code it does not trust (a task's command, a verify command, the agent)
gets ``process_environment``, runs in its own process group (``kill_process_group`` ends all of it, also
when the leader has exited) and within ``Limits``. Standard library only.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ProcessBound = Literal["cgroup", "rlimit", "none"]

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# What a task inherits from the worker: enough to find programs and print text, nothing that authenticates.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_V2_ROOT = Path("/sys/fs/cgroup")
_V1_PIDS = Path("/sys/fs/cgroup/pids")
ABANDONED_AFTER_S = 600  # an empty run cgroup this old belongs to no run being set up

io_guard: Callable[[], None] | None = None  # set by the Django side: raises inside a database transaction


def check_io_allowed() -> None:
    """Called before git or any other process starts; the installed guard raises where I/O does not belong."""
    if io_guard is not None:
        io_guard()


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


def kill_process_group(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
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


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, leaving it unreaped (a zombie keeps its pid from reuse)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped elsewhere
        return True


def process_bound() -> ProcessBound:
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
        cls.remove_abandoned(parent)
        group = cls(parent / f"run-{uuid.uuid4().hex}")
        group.path.mkdir()
        try:
            (group.path / "pids.max").write_text(str(limit))
        except OSError:
            group.close()
            raise
        return group

    @staticmethod
    def remove_abandoned(parent: Path, older_than_s: float = ABANDONED_AFTER_S) -> list[Path]:
        """Remove the empty run cgroups a killed worker could not close (its run's watchdog ended the run,
        but only the worker removes the cgroup). Old ones only: a run being created is empty for a moment,
        and a cgroup with a process in it cannot be removed at all."""
        removed = []
        for path in parent.glob("run-*"):
            try:
                old = time.time() - path.stat().st_mtime > older_than_s
                if old and not (path / "cgroup.procs").read_text().split():
                    path.rmdir()
                    removed.append(path)
            except OSError:
                continue  # gone meanwhile, or a process joined it
        return removed

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
