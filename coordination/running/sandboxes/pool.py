"""Prepared checkouts of one repository, reused from task to task instead of written anew for each.

Writing a 5,000-file checkout for every task and deleting it afterwards is most of what a small task costs.
A pool keeps a few slots per repository on this host (``DAGMERGE_SANDBOX_POOL``); a run takes a free one,
moves its files to the task's start commit (only the files that differ are written) and, when the task
ends, scrubs it back to nothing but tracked files (``LocalSandbox`` does the git part).

Who holds a slot is an exclusive ``flock`` on its ``lock`` file, taken without waiting: the kernel gives it
to one taker at a time and drops it when the holder's process dies, however it dies, so a killed worker
leaks no slot and no sweep is needed. A holder that died may still have a confined command running in the
slot until the command's watchdog notices the lease stopped being renewed (``alive`` goes stale, see
``runner.run_confined``); a slot whose ``alive`` file is younger than that is left alone. A slot is
reused only when its last holder finished scrubbing it (the ``clean`` marker, written last); any other
slot (its holder died, or the scrub found something git cannot put back) is rebuilt from nothing.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

# After a holder died: the watchdog polls every 0.2 s, the kernel then kills the run's namespace.
WATCHDOG_MARGIN_S = 2.0


@dataclass
class Slot:
    """A slot this process holds until ``release``; ``reusable`` when its last holder left it scrubbed."""

    path: Path
    reusable: bool
    _handle: IO[str]

    def release(self, *, clean: bool) -> None:
        """Give the slot back; ``clean`` only when the scrub succeeded (the next taker reuses it)."""
        try:
            with contextlib.suppress(FileNotFoundError):
                (self.path / "alive").unlink()  # the run is over: no command of it is left to wait for
            if clean:
                (self.path / "clean").touch()
        finally:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()


class SandboxPool:
    """Up to ``size`` slots under ``root`` (one repository, this host)."""

    def __init__(self, root: Path, size: int, *, quiet_for: float = 0.0):
        self.root, self.size = root, size
        self.quiet_for = quiet_for + WATCHDOG_MARGIN_S if quiet_for else 0.0

    def take(self) -> Slot | None:
        """A free slot, held by this process from now on; None when all are taken (the caller then uses a
        folder of its own, as without a pool)."""
        for n in range(self.size):
            path = self.root / f"slot-{n}"
            path.mkdir(parents=True, exist_ok=True)
            handle = open(path / "lock", "a")  # noqa: SIM115 - held open for as long as the slot is taken
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            if self._maybe_running(path):
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
                continue
            clean = path / "clean"
            reusable = clean.exists()
            clean.unlink(missing_ok=True)  # from here until a scrub finishes the slot is not known clean
            return Slot(path, reusable, handle)
        return None

    def _maybe_running(self, path: Path) -> bool:
        """A dead holder's command may still run here until its watchdog kills it."""
        try:
            return time.time() - (path / "alive").stat().st_mtime < self.quiet_for
        except FileNotFoundError:
            return False


def residue(workdir: Path, tracked: dict[str, str], since: float) -> list[str]:
    """What a task left in a work tree that ``git clean -ffdx`` kept and the next checkout would not put back.

    ``tracked`` is the index (path: git mode) after the clean: anything else found is residue (git skips
    anything named ``.git`` and special files such as FIFOs, does not look inside a submodule's folder, and
    leaves a folder standing where the index has a file). Each tracked path must be what the index says,
    with the mode a checkout gives, one link and no extended attributes (ACLs are some), and so must each
    folder. Content is git's to check: the next checkout compares each file's stat data, and the content of
    any file whose mtime is in the second the index was written (``since``: the index's mtime; a task runs
    only afterwards and cannot set a ctime, so a file it changed differs in ctime or is compared), and
    writes again every file that differs.
    """
    umask = _umask()
    modes = {"100644": 0o666 & ~umask, "100755": 0o777 & ~umask, "folder": 0o777 & ~umask}
    folders = {"/".join(parts[:i]) for path in tracked for parts in [path.split("/")] for i in range(1, len(parts))}
    found = [problem for problem in [_differs(workdir, "folder", workdir.lstat(), modes, since)] if problem]
    pending = [(workdir, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = prefix + entry.name
                kind = tracked.get(path) or ("folder" if path in folders else "")
                problem = _differs(Path(entry.path), kind, entry.stat(follow_symlinks=False), modes, since)
                if problem:
                    found.append(f"{path}: {problem}")
                elif kind == "folder":
                    pending.append((Path(entry.path), path + "/"))
    return found


def _differs(path: Path, kind: str, info: os.stat_result, modes: dict[str, int], since: float) -> str:
    """How a path differs from what a checkout makes of an index entry of ``kind`` ('' when none)."""
    if not kind:
        return "not in the index"
    if kind == "120000":
        return "" if stat.S_ISLNK(info.st_mode) else "not a link"
    if kind == "160000":
        return "" if stat.S_ISDIR(info.st_mode) and not any(path.iterdir()) else "files in a submodule's folder"
    if stat.S_ISDIR(info.st_mode) != (kind == "folder") or not (stat.S_ISDIR(info.st_mode) or
                                                                 stat.S_ISREG(info.st_mode)):
        return "not a file" if kind != "folder" else "not a folder"
    if stat.S_IMODE(info.st_mode) != modes[kind] or (info.st_nlink != 1 and kind != "folder"):
        return f"mode {stat.S_IMODE(info.st_mode):o} or links unlike a checkout's"
    if info.st_ctime >= int(since) and _xattrs(path):
        return "extended attributes"
    return ""


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):  # a file system without them
            return []
        raise


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets it, racing other threads)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return 0o022
