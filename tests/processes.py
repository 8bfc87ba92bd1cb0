"""Looking for processes from the outside, as ``pgrep -af`` would: what a test left running, or did not."""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from pathlib import Path

# A Python a bare sandbox (no PYTHON_PREFIXES bound, unlike a task's) can run: the one running the tests may sit
# in a checkout under /tmp, which a sandbox hides (its /tmp is its own), so probes run in one use the system's.
SANDBOX_PYTHON = shutil.which("python3", path=os.defpath) or sys.executable


def gone(marker: str, within: float = 5.0) -> bool:
    """Whether no process matches ``marker`` (a SIGKILLed process may take a moment to die)."""
    deadline = time.monotonic() + within
    while matching(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def matching(marker: str) -> list[str]:
    """Command lines of live processes containing ``marker`` (what ``pgrep -af`` prints)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker in cmdline and state != "Z":
                found.append(cmdline)
    return found


def marker() -> str:
    """A `sleep` duration no other process on the machine uses: `sleep 301.<digits>` is its own pgrep key."""
    return f"301.{random.randrange(10**8):08d}"
