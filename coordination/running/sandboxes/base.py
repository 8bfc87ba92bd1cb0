"""What a sandbox is, whatever backs it (a confined local repository, or a Daytona sandbox)."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Protocol

from merges.engine.runner import ProcessResult

OUTPUT_TAIL_BYTES = 64 * 1024

__all__ = ["OUTPUT_TAIL_BYTES", "ProcessResult", "Sandbox", "UnreadableFile", "check_readable"]


class UnreadableFile(ValueError):
    """A scratch file the task left that dagmerge will not read: not a regular file, or too big."""


def check_readable(mode: int, size: int, max_bytes: int) -> None:
    """Refuse, before reading a byte, what would block (a FIFO), lead out of the sandbox (a link) or fill
    the worker's memory (a task can write gigabytes where a small JSON file is expected)."""
    if stat.S_ISLNK(mode):
        raise UnreadableFile("is a symbolic link, not a regular file")
    if not stat.S_ISREG(mode):
        raise UnreadableFile("is not a regular file")
    if size > max_bytes:
        raise UnreadableFile(f"holds {size} bytes; at most {max_bytes} are kept")


class Sandbox(Protocol):
    workdir: Path
    isolation: str  # how the task's commands are confined, shown on the task page

    @property
    def scratch(self) -> PurePath:
        """Beside the work tree, never committed: the task's context and result files (a path on the
        sandbox's side, so pure: a remote sandbox's folder is not on this machine)."""

    def prepare(self, ref: str, start_sha: str) -> None: ...

    def write_file(self, name: str, data: bytes) -> str: ...

    def read_file(self, name: str, max_bytes: int) -> bytes | None:
        """A scratch file the task wrote, or None when it wrote none; UnreadableFile (checked before
        reading) when it is not a regular file or holds more than ``max_bytes``."""

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult: ...

    def commit_all(self, message: str) -> str: ...

    def changed_files(self, since: str) -> list[str]: ...

    def close(self) -> None: ...
