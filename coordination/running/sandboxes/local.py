"""Where a task's work happens: by default a git worktree of the workspace clone.

A sandbox is prepared on the task branch at a pinned start commit, runs commands with a timeout and
a minimal environment, commits whatever the task left, and is removed when the task ends.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from merges.engine.git import Git, GitError
from merges.engine.processes import check_io_allowed, kill_process_group

OUTPUT_TAIL_BYTES = 64 * 1024


@dataclass
class ProcessResult:
    exit_code: int | None  # None: killed at the timeout, or stopped
    output_tail: str
    timed_out: bool
    duration_s: float
    stopped: bool = False  # killed because the run lost its task (cancelled, or taken over)


class Sandbox(Protocol):
    workdir: Path
    scratch: Path  # beside the work tree, never committed: the task's context and result files

    def prepare(self, ref: str, start_sha: str) -> None: ...

    def write_file(self, name: str, data: bytes) -> str: ...

    def read_file(self, name: str) -> bytes | None: ...

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult: ...

    def commit_all(self, message: str) -> str: ...

    def changed_files(self, since: str) -> list[str]: ...

    def close(self) -> None: ...


class LocalWorktreeSandbox:
    """A worktree of the bare workspace clone, on its own branch."""

    def __init__(self, clone: Git, workdir: Path, lock: Callable[[], AbstractContextManager[None]]):
        self.clone = clone
        self.workdir = workdir
        self.scratch = workdir.with_name(workdir.name + ".dagmerge")
        self._lock = lock  # a context manager factory serializing worktree bookkeeping on the clone
        self.git = Git(workdir)

    def prepare(self, ref: str, start_sha: str) -> None:
        with self._lock():
            self._remove_worktree()
            current = self.clone.rev_parse(ref)
            if current != start_sha:
                self.clone.update_ref(ref, start_sha, current, message="dagmerge: task start")
            self.workdir.parent.mkdir(parents=True, exist_ok=True)
            self.clone.run("worktree", "add", "-q", "--end-of-options", str(self.workdir),
                           ref.removeprefix("refs/heads/"))
        (self.scratch / "home").mkdir(parents=True, exist_ok=True)

    def write_file(self, name: str, data: bytes) -> str:
        path = self.scratch / name
        path.write_bytes(data)
        return str(path)

    def read_file(self, name: str) -> bytes | None:
        path = self.scratch / name
        return path.read_bytes() if path.exists() else None

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult:
        return run_process(argv, cwd=self.workdir, env=env, timeout=timeout, on_output=on_output, stop=stop)

    def commit_all(self, message: str) -> str:
        self.git.run("add", "-A")
        if self.git.run("diff", "--cached", "--quiet", ok=(0, 1)).returncode == 1:
            self.git.run("commit", "-q", "--no-verify", "-m", message)
        return self.git.text("rev-parse", "HEAD")

    def changed_files(self, since: str) -> list[str]:
        return sorted(self.git.changed_paths(since, "HEAD"))

    def close(self) -> None:
        with self._lock():
            self._remove_worktree()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _remove_worktree(self) -> None:
        if self.workdir.exists():
            try:
                self.clone.run("worktree", "remove", "--force", "--force", str(self.workdir))
            except GitError:
                shutil.rmtree(self.workdir, ignore_errors=True)
        self.clone.run("worktree", "prune")


def run_process(argv: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float,
                on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
                ) -> ProcessResult:
    """Run ``argv`` (no shell) in its own process group, killing the whole group at the timeout or as
    soon as ``stop`` is set.

    Output (stdout and stderr together) is passed on in chunks as it comes; the tail is kept.
    """
    started = time.monotonic()
    check_io_allowed()
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        return ProcessResult(127, f"cannot start {argv[0]!r}: {exc.strerror}\n", False, 0.0)
    tail = bytearray()

    def pump() -> None:
        assert proc.stdout is not None
        for chunk in iter(lambda: proc.stdout.read1(8192), b""):  # type: ignore[union-attr]
            tail.extend(chunk)
            del tail[:-OUTPUT_TAIL_BYTES]
            if on_output:
                on_output(chunk.decode(errors="replace"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = started + timeout
    timed_out = stopped = False
    while proc.poll() is None:
        if stop is not None and stop.is_set():
            stopped = True
        elif time.monotonic() >= deadline:
            timed_out = True
        else:
            try:
                proc.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
            except subprocess.TimeoutExpired:
                pass
            continue
        break
    kill_process_group(proc)  # also after a normal exit: nothing the command started outlives it
    reader.join(timeout=5)
    return ProcessResult(
        exit_code=None if timed_out or stopped else proc.returncode,
        output_tail=tail.decode(errors="replace"),
        timed_out=timed_out,
        duration_s=time.monotonic() - started,
        stopped=stopped,
    )
