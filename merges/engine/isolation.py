"""Confining untrusted code — task commands, verify commands, the agent — with bubblewrap.

``Isolation.detect`` says whether this machine can confine (bwrap present and working) and ``wrap``
builds the sandbox command line; ``runner.run_confined`` runs a command with them. Why each flag is
there is written beside it; docs/security.md lists the cases and the tests that prove them.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from merges.engine.processes import ProcessBound, process_bound, process_environment

Mode = Literal["bubblewrap", "trusted"]
# With systemd-resolved it is a link into /run, which tasks do not see: bound back where network is on.
RESOLV_CONF = Path("/etc/resolv.conf")


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
    processes = process_bound()
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


def wrap(argv: Sequence[str], *, workdir: Path, writable: Sequence[Path] = (), readonly: Sequence[Path] = (),
         hide: Sequence[Path] = (), network: bool = False, env: Mapping[str, str],
         tmp_bytes: int = 512 << 20, bwrap: str = "bwrap") -> list[str]:
    """The bubblewrap command line that runs ``argv`` in ``workdir`` and lets it reach nothing else.

    Namespaces: user (the task's root is powerless outside), PID (it sees and signals only its own
    processes, and they all die with it), IPC, UTS, cgroup, and network unless ``network``. The root is
    read-only; ``workdir`` and ``writable`` are the only writable host paths, /tmp is private. ``hide``
    puts an empty read-only tmpfs over a directory (a file is covered by /dev/null): the workdir may lie
    inside a hidden directory (DAGMERGE_HOME/workspace/worktrees/<name>), so mounts are ordered by depth —
    a deeper mount always lands on top of a shallower one — and hidden directories are made read-only last
    (non-recursively, so the workdir bound inside stays writable). The task gets exactly ``env``. With the
    network on, the file /etc/resolv.conf links to stays readable, hidden folder or not.
    """
    kinds: dict[Path, str] = {Path("/tmp"): "tmp"}
    if network and RESOLV_CONF.exists() and _absolute(RESOLV_CONF) != RESOLV_CONF:
        readonly = [*readonly, RESOLV_CONF]  # its real path: names still resolve with /run hidden
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


def _absolute(path: Path) -> Path:
    """The real path: bwrap mounts onto what a path names, and a symlinked DAGMERGE_HOME must still hide."""
    return Path(os.path.realpath(path))


def _nearest_mount(path: Path, kinds: Mapping[Path, str]) -> str | None:
    """The kind of the deepest mount above ``path``: what the sandbox shows there before ``path`` is mounted."""
    above = [parent for parent in path.parents if parent in kinds]
    return kinds[max(above, key=lambda parent: len(parent.parts))] if above else None
