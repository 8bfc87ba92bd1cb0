"""Starting processes: one environment policy, one process-group kill, one guard against I/O in a transaction.

Every process dagmerge starts for code it does not trust (a task's command, a verify command, the agent)
gets ``untrusted_environment``: an allow-list, so no secret of the worker is inherited. Every such
process runs in its own process group, and ``kill_process_group`` ends the whole group — also when its
leader has already exited and left children behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping

ENV_PASSTHROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"

io_guard: Callable[[], None] | None = None  # set by the Django side: raises inside a database transaction


def check_io_allowed() -> None:
    """Called before git or any other process starts; the installed guard raises where I/O does not belong."""
    if io_guard is not None:
        io_guard()


def untrusted_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's PATH, language and time zone, and what the caller adds; nothing else of os.environ."""
    env = {k: os.environ[k] for k in ENV_PASSTHROUGH if k in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra or {})
    return env


def kill_process_group(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process's group, then SIGKILL whatever is left of it after ``grace`` seconds.

    The group is signalled even when the leader has exited (its pid stays the group id while members
    live), so a daemon the command left behind is ended too; then the leader is reaped.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:  # unkillable (uninterruptible sleep): leave it to the kernel
        pass
