"""Where a task's work happens by default: a git repository of its own, confined by bubblewrap.

The task gets a repository (``work/``) whose objects are borrowed read-only from the workspace clone
(``objects/info/alternates``): it can read history and commit, but its refs, config and hooks are its own
and nothing it does reaches the clone. Its commands run under bubblewrap (``run_confined``): only ``work/``
and the scratch folder are writable, DAGMERGE_HOME and every other task are hidden, and the network is off
unless the task or ticket asks for it. Afterwards dagmerge checks the repository was not turned into a door
(``.git`` or anything in it replaced by a link, a ``commondir``, alternates pointed elsewhere), puts back the
config it wrote, commits what the task left with its own neutralised git, fetches the result into the clone
and moves the task branch by compare-and-swap.

The files are written by dagmerge's own git, which keeps its index in ``git/`` beside the work tree, out of
the task's reach: the task's ``.git`` is made anew for each task (its index a copy), so nothing the task
writes there outlives it. With a pool (``pool.py``) the work tree is a slot reused from task to task: the
checkout to the next start commit writes only the files that differ (and every file whose stat data changed
since dagmerge wrote it: a task cannot forge a ctime), and the scrub when the task ends removes the task's
``.git``, its scratch folder and, with ``git clean -ffdx``, every untracked and ignored file. Without a free
slot the sandbox is a folder named after the task, removed when the task ends (and any folder a dead run of
the same task left behind is removed before the next run starts).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from coordination.running.sandboxes.base import UnreadableFile, check_readable
from coordination.running.sandboxes.pool import SandboxPool, Slot, residue
from merges.engine.git import Git, GitError
from merges.engine.isolation import Isolation
from merges.engine.runner import ProcessResult, run_confined

log = logging.getLogger(__name__)

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
    """A task's own repository under ``root`` (``root/work``, ``root/scratch``), confined when it runs; with
    a ``pool``, under a slot of it when one is free."""

    def __init__(self, clone: Git, root: Path, lock: Callable[[], AbstractContextManager[None]], *,
                 isolation: Isolation, trusted: bool = False, hide: Sequence[Path] = (), network: bool = False,
                 lease_seconds: float = 0.0, pool: SandboxPool | None = None):
        if not isolation.isolated and not trusted:
            raise SandboxRefused(
                f"tasks run only under bubblewrap and it is unavailable ({isolation.reason}); install bubblewrap, "
                "or set DAGMERGE_TRUSTED_CODE=1 to run task code unconfined on this machine")
        self.clone, self._lock, self._pool = clone, lock, pool
        self._slot: Slot | None = None
        self._running = False  # between prepare and close
        self._place(root)
        self._isolation, self._hide, self._network = isolation, tuple(hide), network
        self.isolation = isolation.describe() + (", network on" if network and isolation.isolated else "")
        self._ref = self._start = ""
        self._head = ""  # what commit_all moved the task branch to
        self._config = b""  # the task repository's config as dagmerge wrote it, restored before its own git
        # Touched on every lease renewal; a run whose file goes stale (its worker stopped) is killed at 2/3
        # of the lease, before the sweep can start another run of the task.
        self._alive_within = lease_seconds * 2 / 3

    def _place(self, root: Path) -> None:
        self.root, self.workdir, self.scratch, self.alive = root, root / "work", root / "scratch", root / "alive"

    def mark_alive(self) -> None:
        if not self._running:  # a renewal after close must not make a slot given back look busy
            return
        with contextlib.suppress(OSError):  # the folder is gone once another run of the task took over
            self.alive.touch()

    @property
    def git(self) -> Git:
        """dagmerge's git on the task's repository: the git dir and work tree named, never discovered."""
        return Git(self.workdir, env={"GIT_DIR": str(self.workdir / ".git"), "GIT_WORK_TREE": str(self.workdir)})

    @property
    def checkout(self) -> Git:
        """dagmerge's own git on the work tree: its index (``root/git``) is where the task cannot write."""
        own = self.root / "git"
        return Git(own, env={"GIT_DIR": str(own), "GIT_WORK_TREE": str(self.workdir)})

    def prepare(self, ref: str, start_sha: str) -> None:
        self._ref, self._start, self._head = ref, start_sha, ""
        self._slot = self._pool.take() if self._pool else None
        if self._slot:
            self._place(self._slot.path)
        reuse = self._slot is not None and self._slot.reusable
        if not reuse:  # a new folder, a dead run's leftovers, or a slot that could not be scrubbed
            for part in ("work", "scratch", "git"):
                remove_tree(self.root / part)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.scratch / "home").mkdir(parents=True)
        self._running = True
        self.mark_alive()
        with self._lock():  # the task branch starts at the pinned commit, whatever a dead run left on it
            current = self.clone.rev_parse(ref)
            if current != start_sha:
                self.clone.update_ref(ref, start_sha, current, message="dagmerge: task start")
        if not reuse:
            (self.root / "git").mkdir()
            self.checkout.run("init", "-q", "--template=")
            self._borrow_objects(self.root / "git")
        # One tree against the index: only files that differ from the start commit, or whose stat data
        # changed since this index wrote them, are written.
        self.checkout.run("read-tree", "--reset", "-u", start_sha)
        # Made from outside and then always reached through ``self.git``: git's reading of its config is
        # cached per repository and environment (git_config), so one reading serves the task's whole commit.
        Git.outside_repository().run("init", "-q", "--template=", "-b", "work", str(self.workdir))
        self._config = (self.workdir / ".git" / "config").read_bytes()
        self._borrow_objects(self.workdir / ".git")
        self.git.run("update-ref", "refs/heads/work", start_sha)
        shutil.copyfile(self.root / "git" / "index", self.workdir / ".git" / "index")

    def _borrow_objects(self, git_dir: Path) -> None:
        info = git_dir / "objects" / "info"
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
        self._head = head
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
        if (dot_git / "config").read_bytes() != self._config:  # left alone, it is not written: git's
            (dot_git / "config").write_bytes(self._config)  # reading of it stays cached (git_config)

    def index_modes(self) -> dict[str, str]:
        """{path: git mode} of each entry of dagmerge's own index (what the work tree must hold)."""
        listed = self.checkout.run("ls-files", "--stage", "-z").stdout.decode(errors="surrogateescape")
        modes = {}
        for entry in filter(None, listed.split("\0")):
            info, path = entry.split("\t", 1)
            modes[path] = info.split(" ", 1)[0]
        return modes

    def changed_files(self, since: str) -> list[str]:
        return sorted(self.clone.changed_paths(since, self._head or self.clone.text("rev-parse", self._ref)))

    def close(self) -> None:
        """Remove the folder, or scrub the slot and give it back (reused only if the scrub succeeded)."""
        slot, self._slot = self._slot, None
        self._running = False
        if slot is None:
            remove_tree(self.root)
            return
        clean = False
        try:
            clean = self._scrub()
        finally:  # whatever happened, the slot goes back (not reusable unless scrubbed)
            slot.release(clean=clean)

    def _scrub(self) -> bool:
        """Leave only tracked files, as the task may have left them: the next checkout rewrites each one
        whose stat data changed. False when something of the task may be left."""
        try:
            remove_tree(self.workdir / ".git")
            remove_tree(self.scratch)
            self.checkout.run("clean", "-ffdxq")
            left = residue(self.workdir, self.index_modes(), since=(self.root / "git" / "index").stat().st_mtime)
        except (OSError, GitError) as exc:
            log.warning("sandbox %s not reused: %s", self.root, exc)
            return False
        if left:
            log.warning("sandbox %s not reused: the task left %s", self.root, "; ".join(left[:5]))
        return not left


def remove_tree(path: Path) -> None:
    """Remove a sandbox folder, also one whose files a task made read-only."""
    if path.is_symlink() or path.is_file():  # a task may have made its .git a link or a file
        path.unlink()
    elif path.exists():
        def writable_then_retry(func, target, _exc):  # noqa: ANN001 - shutil's onerror signature
            Path(target).parent.chmod(0o700)
            func(target)
        shutil.rmtree(path, onerror=writable_then_retry)
