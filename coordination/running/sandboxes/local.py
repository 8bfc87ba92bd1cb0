"""Where a task's work happens by default: a git repository of its own, confined by bubblewrap.

The task gets a fresh repository (``work/``) whose objects are borrowed read-only from the workspace
clone (``objects/info/alternates``): it can read history and commit, but its refs, config and hooks are
its own and nothing it does reaches the clone. Its commands run under bubblewrap (``run_confined``):
only ``work/`` and the scratch folder are writable, DAGMERGE_HOME and every other task are hidden, and
the network is off unless the task or ticket asks for it. Afterwards dagmerge checks the repository was
not turned into a door (``.git`` or anything in it replaced by a link, a ``commondir``, alternates pointed
elsewhere), puts back the config it wrote, commits what the task left with its own neutralised git,
fetches the result into the clone and moves the task branch by compare-and-swap. The whole folder is
removed when the task ends, and any folder a dead run of the same task left behind is removed before the
next run starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from coordination.running.sandboxes.base import UnreadableFile, check_readable
from merges.engine.git import Git, GitError
from merges.engine.isolation import Isolation
from merges.engine.runner import ProcessResult, run_confined

# The worker's Python stays visible (read-only) wherever it lives, even under a hidden /tmp: a task may
# run it (the demo's tasks do), and it is code, not a secret.
PYTHON_PREFIXES = tuple(sorted({Path(sys.prefix), Path(sys.base_prefix)}))


class SandboxRefused(RuntimeError):
    """The task cannot run here as configured (no isolation and no trusted-code mode)."""


class TamperedRepository(GitError):
    """The task replaced parts of its repository that dagmerge's own git would follow."""

    def __init__(self, what: str):
        super().__init__(["sandbox"], 1, what)

    def __str__(self) -> str:
        return f"refused: {self.stderr}"


class LocalSandbox:
    """A task's own repository under ``root`` (``root/work``, ``root/scratch``), confined when it runs."""

    def __init__(self, clone: Git, root: Path, lock: Callable[[], AbstractContextManager[None]], *,
                 isolation: Isolation, trusted: bool = False, hide: Sequence[Path] = (), network: bool = False,
                 lease_seconds: float = 0.0):
        if not isolation.isolated and not trusted:
            raise SandboxRefused(
                f"tasks run only under bubblewrap and it is unavailable ({isolation.reason}); install bubblewrap, "
                "or set DAGMERGE_TRUSTED_CODE=1 to run task code unconfined on this machine")
        self.clone, self.root, self._lock = clone, root, lock
        self.workdir, self.scratch = root / "work", root / "scratch"
        self._isolation, self._hide, self._network = isolation, tuple(hide), network
        self.isolation = isolation.describe() + (", network on" if network and isolation.isolated else "")
        self._ref = self._start = ""
        self._config = b""  # the task repository's config as dagmerge wrote it, restored before its own git
        # Touched on every lease renewal; a run whose file goes stale (its worker stopped) is killed at 2/3
        # of the lease, before the sweep can start another run of the task.
        self.alive, self._alive_within = root / "alive", lease_seconds * 2 / 3

    def mark_alive(self) -> None:
        with contextlib.suppress(OSError):  # the folder is gone once another run of the task took over
            self.alive.touch()

    @property
    def git(self) -> Git:
        """dagmerge's git on the task's repository: the git dir and work tree named, never discovered."""
        return Git(self.workdir, env={"GIT_DIR": str(self.workdir / ".git"), "GIT_WORK_TREE": str(self.workdir)})

    def prepare(self, ref: str, start_sha: str) -> None:
        self._ref, self._start = ref, start_sha
        remove_tree(self.root)
        self.workdir.mkdir(parents=True)
        (self.scratch / "home").mkdir(parents=True)
        self.mark_alive()
        with self._lock():  # the task branch starts at the pinned commit, whatever a dead run left on it
            current = self.clone.rev_parse(ref)
            if current != start_sha:
                self.clone.update_ref(ref, start_sha, current, message="dagmerge: task start")
        git = Git(self.workdir)
        git.run("init", "-q", "--template=", "-b", "work")
        self._config = (self.workdir / ".git" / "config").read_bytes()
        self._borrow_objects()
        git.run("update-ref", "refs/heads/work", start_sha)
        git.run("reset", "-q", "--hard", "work")

    def _borrow_objects(self) -> None:
        info = self.workdir / ".git" / "objects" / "info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "alternates").write_text(self._alternates)

    @property
    def _alternates(self) -> str:
        return f"{self.clone.repo / 'objects'}\n"

    def write_file(self, name: str, data: bytes) -> str:
        path = self.scratch / name
        path.write_bytes(data)
        return str(path)

    def read_file(self, name: str, max_bytes: int) -> bytes | None:
        """Opened without following a link and without blocking on a FIFO, checked on the open file
        (nothing can swap it between the check and the read), read up to ``max_bytes``."""
        try:
            fd = os.open(self.scratch / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO):  # a link (O_NOFOLLOW), a socket
                check_readable((self.scratch / name).lstat().st_mode, 0, max_bytes)
            raise UnreadableFile(f"cannot be opened: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            check_readable(info.st_mode, info.st_size, max_bytes)
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(max_bytes + 1)
        finally:
            os.close(fd)
        if len(data) > max_bytes:  # it grew after the check (a process of a trusted-mode run still writes)
            raise UnreadableFile(f"holds more than {max_bytes} bytes; at most {max_bytes} are kept")
        return data

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult:
        return run_confined(argv, isolation=self._isolation, workdir=self.workdir, extra_env=env, timeout=timeout,
                            writable=[self.scratch], readonly=[self.clone.repo / "objects", *PYTHON_PREFIXES],
                            hide=self._hide,
                            network=self._network, on_output=on_output, stop=stop,
                            alive_file=self.alive if self._alive_within else None, alive_within=self._alive_within)

    def commit_all(self, message: str) -> str:
        """Commit what the task left; the result must descend from the start commit. Returns the head."""
        self._check_repository()
        git = self.git
        git.run("add", "-A")
        if git.run("diff", "--cached", "--quiet", ok=(0, 1)).returncode == 1:
            git.run("commit", "-q", "--no-verify", "-m", message)
        head = git.text("rev-parse", "--verify", "HEAD^{commit}")
        if not git.is_ancestor(self._start, head):
            raise TamperedRepository(f"the task's HEAD {head[:12]} does not descend from its start commit")
        git.run("update-ref", "refs/dagmerge/result", head)  # a ref to fetch: a bare sha may not be wanted
        with self._lock():
            incoming = f"refs/dagmerge/incoming/{self.root.name}"
            self.clone.run("fetch", "-q", "--no-tags", "--no-write-fetch-head", "--end-of-options", str(self.workdir),
                           f"+refs/dagmerge/result:{incoming}")
            try:
                self.clone.update_ref(self._ref, head, self._start, message="dagmerge: task result")
            finally:
                self.clone.run("update-ref", "-d", incoming)
        return head

    def _check_repository(self) -> None:
        """The task could write its .git: make sure dagmerge's git reads only what dagmerge set up.

        Refused: ``.git`` or anything in it turned into a link or a special file (git follows links in refs,
        logs and objects — into the clone, whose path the alternates file names — and blocks on a FIFO); a
        ``commondir`` file (git would take refs, objects and config from the repository it names); alternates
        changed. The config is put back as ``git init`` wrote it: git honours conditional includes
        (``includeIf "onbranch:…"``) that no reading of the file from outside the repository can see, so the
        only safe config is one the task did not write.
        """
        dot_git = self.workdir / ".git"
        if dot_git.is_symlink() or not dot_git.is_dir():
            raise TamperedRepository("the task replaced .git with a link or a file")
        for folder, dirs, files in os.walk(dot_git):
            for name in (*dirs, *files):
                path = Path(folder, name)
                if not stat.S_ISDIR(mode := path.lstat().st_mode) and not stat.S_ISREG(mode):
                    raise TamperedRepository(f"the task made {path.relative_to(self.workdir)} a link or a special file")
        if (dot_git / "commondir").exists():
            raise TamperedRepository("the task pointed .git/commondir at another repository")
        alternates = dot_git / "objects" / "info" / "alternates"
        if not alternates.is_file() or alternates.read_text(errors="replace") != self._alternates:
            raise TamperedRepository("the task rewrote .git/objects/info/alternates")
        (dot_git / "config").write_bytes(self._config)

    def changed_files(self, since: str) -> list[str]:
        return sorted(self.clone.changed_paths(since, self.clone.text("rev-parse", self._ref)))

    def close(self) -> None:
        remove_tree(self.root)


def remove_tree(path: Path) -> None:
    """Remove a sandbox folder, also one whose files a task made read-only."""
    if path.exists() or path.is_symlink():
        def writable_then_retry(func, target, _exc):  # noqa: ANN001 - shutil's onerror signature
            Path(target).parent.chmod(0o700)
            func(target)
        shutil.rmtree(path, onerror=writable_then_retry)
