"""What a sandbox is, whatever backs it (a confined local repository, or a Daytona sandbox)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path, PurePath
from typing import Protocol

from merges.engine.runner import ProcessResult

OUTPUT_TAIL_BYTES = 64 * 1024

__all__ = ["OUTPUT_TAIL_BYTES", "ProcessResult", "Sandbox"]


class Sandbox(Protocol):
    workdir: Path
    isolation: str  # how the task's commands are confined, shown on the task page

    @property
    def scratch(self) -> PurePath:
        """Beside the work tree, never committed: the task's context and result files (a path on the
        sandbox's side, so pure: a remote sandbox's folder is not on this machine)."""

    def prepare(self, ref: str, start_sha: str) -> None: ...

    def write_file(self, name: str, data: bytes) -> str: ...

    def read_file(self, name: str) -> bytes | None: ...

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult: ...

    def commit_all(self, message: str) -> str: ...

    def changed_files(self, since: str) -> list[str]: ...

    def close(self) -> None: ...
