"""A task sandbox on a Daytona machine, driven through the ``daytona`` SDK.

The code goes in by a clone of a URL the machine can reach, topped up with a ``git bundle`` of whatever
it lacks (the start commit may exist only in the workspace clone); the task branch comes back the same
way: a bundle of start..HEAD made in the sandbox, downloaded and fetched into the workspace clone, whose
task ref then moves by compare-and-swap. The remote machine costs money and holds code, so it is
deleted whatever happens: ``close()`` (also as a context manager) and every failure of ``prepare()``.

The SDK's execute endpoint takes one command string for the sandbox's shell, so every argument list is
quoted with ``shlex.join`` and nothing is pasted into a command unquoted.

The SDK is the ``agents`` extra: it is imported when a sandbox is made, and without it making one fails
with a line saying what to install.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from coordination.running.sandboxes.base import OUTPUT_TAIL_BYTES, ProcessResult, check_readable
from merges.engine.extras import DAYTONA_SDK, load
from merges.engine.git import Git

if TYPE_CHECKING:
    from daytona import CreateSandboxFromImageParams, CreateSandboxFromSnapshotParams, Daytona, ExecuteResponse
    from daytona import Sandbox as RemoteSandbox

log = logging.getLogger(__name__)

# The same protections merges.engine.git gives the workspace: the task may have written hooks into .git.
REMOTE_GIT = ("git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
REMOTE_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "dagmerge",
    "GIT_AUTHOR_EMAIL": "dagmerge@localhost",
    "GIT_COMMITTER_NAME": "dagmerge",
    "GIT_COMMITTER_EMAIL": "dagmerge@localhost",
}
GIT_STEP_TIMEOUT = 600  # seconds for one git command in the sandbox
# These name directories of the worker host; inside the sandbox its own values are the right ones.
HOST_ONLY_ENV = ("PATH", "HOME", "TMPDIR")


class SandboxError(Exception):
    """A step of preparing or collecting a Daytona sandbox failed."""


@dataclass(frozen=True)
class DaytonaSettings:
    """Where Daytona is and what to start there; the key stays out of repr() and so out of logs."""

    api_key: str = field(repr=False)
    api_url: str | None = None  # None: the SDK's default (Daytona's cloud)
    target: str | None = None  # None: the organization's default region
    image: str | None = None
    snapshot: str | None = None  # neither image nor snapshot: Daytona's default snapshot
    create_timeout: float = 300


def settings_from_env(environ: Mapping[str, str] = os.environ) -> DaytonaSettings:
    """Read DAYTONA_API_KEY, DAYTONA_API_URL, DAYTONA_TARGET, DAGMERGE_DAYTONA_IMAGE / _SNAPSHOT."""
    api_key = environ.get("DAYTONA_API_KEY", "").strip()
    if not api_key:
        raise ImproperlyConfigured("the daytona sandbox backend needs DAYTONA_API_KEY")
    image = environ.get("DAGMERGE_DAYTONA_IMAGE") or None
    snapshot = environ.get("DAGMERGE_DAYTONA_SNAPSHOT") or None
    if image and snapshot:
        raise ImproperlyConfigured("set DAGMERGE_DAYTONA_IMAGE or DAGMERGE_DAYTONA_SNAPSHOT, not both")
    return DaytonaSettings(
        api_key=api_key,
        api_url=environ.get("DAYTONA_API_URL") or None,
        target=environ.get("DAYTONA_TARGET") or None,
        image=image,
        snapshot=snapshot,
    )


def daytona_sdk() -> ModuleType:
    """The daytona SDK, imported on first use; MissingExtra (saying what to install) without the extra."""
    return load(DAYTONA_SDK, "the daytona sandbox backend")


def reachable_url(url_or_path: str) -> str | None:
    """The source as a URL a remote machine can clone, or None when only a bundle can carry it."""
    return url_or_path if url_or_path.startswith(("https://", "http://")) else None


def client_for(settings: DaytonaSettings) -> Daytona:
    """An SDK client in polling mode: no socket.io connection kept open from a background thread.

    ``use_deprecated_polling`` is the switch DAYTONA_USE_DEPRECATED_POLLING=true sets (the explicit value
    wins over the variable); set here, not in os.environ, which every thread of a worker shares. A task
    waits for "started" once, which polling does as well as the event stream.
    """
    sdk = daytona_sdk()
    return sdk.Daytona(sdk.DaytonaConfig(
        api_key=settings.api_key, api_url=settings.api_url, target=settings.target, use_deprecated_polling=True,
    ))


class DaytonaSandbox:
    """A Daytona sandbox holding a clone of the repository on the task branch.

    ``clone`` is the bare workspace clone and ``lock`` serializes ref updates on it (as for worktrees).
    ``clone_url`` (see ``reachable_url``) lets the sandbox clone the source itself, ``clone_branch`` of it
    (None: its default branch); without it the whole start commit travels as a bundle.
    """

    isolation = "daytona"  # the task's commands are confined by the remote machine

    def __init__(self, clone: Git, settings: DaytonaSettings, lock: Callable[[], AbstractContextManager[None]],
                 *, name: str, clone_url: str | None = None, clone_branch: str | None = None,
                 client: Daytona | None = None):
        self._sdk = daytona_sdk()  # before anything else: without the extra, no sandbox is made
        self.clone = clone
        self.settings = settings
        self._lock = lock
        self.clone_url = clone_url
        self.clone_branch = clone_branch
        # A unique name lets close() find a sandbox whose create() failed before returning it.
        self.name = f"dagmerge-{re.sub(r'[^A-Za-z0-9-]+', '-', name)[:40]}-{uuid.uuid4().hex[:8]}"
        self._client = client or client_for(settings)
        self._remote: RemoteSandbox | None = None
        self._create_attempted = False
        self._deleted = False
        self.workdir = Path()  # the repository inside the sandbox, known once prepared
        self.scratch = PurePosixPath()  # a folder beside it for bundles and task files
        self._ref = self._start_sha = ""
        self._landed = ""  # where this sandbox last put the task ref in the clone: the compare-and-swap base
        self._head: str | None = None  # the head commit_all returned

    def __enter__(self) -> DaytonaSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Sandbox protocol ---------------------------------------------------------------------

    def prepare(self, ref: str, start_sha: str) -> None:
        """Create the sandbox and check out ``ref`` at ``start_sha`` in it; on any failure it is deleted."""
        self._ref, self._start_sha, self._landed = ref, start_sha, start_sha
        try:
            with self._lock():
                current = self.clone.rev_parse(ref)
                if current != start_sha:
                    self.clone.update_ref(ref, start_sha, current, message="dagmerge: task start")
            self._remote = self._create()
            base = PurePosixPath(self._remote.get_work_dir())
            self.workdir, self.scratch = Path(base / "repo"), base / "dagmerge"
            self._exec(["mkdir", "-p", str(self.scratch)], cwd=base)
            if self.clone_url:
                self._remote.git.clone(self.clone_url, str(self.workdir), branch=self.clone_branch)
            else:
                self._exec([*REMOTE_GIT, "init", "-q", str(self.workdir)], cwd=base)
            self._ship_start_commit()
            self._git("checkout", "-q", "-B", ref.removeprefix("refs/heads/"), start_sha)
        except BaseException:
            self.close()
            raise

    def run(self, argv: Sequence[str], env: dict[str, str], timeout: float,
            on_output: Callable[[str], None] | None = None, stop: threading.Event | None = None
            ) -> ProcessResult:
        """Run ``argv`` in the repository; its output arrives whole, when the command has ended. Daytona's
        execute is one blocking call, so ``stop`` cannot cut it short: the timeout bounds it."""
        remote = self._require_remote()
        env = {k: v for k, v in env.items() if k not in HOST_ONLY_ENV}
        started = time.monotonic()
        try:
            response = remote.process.exec(shlex.join(argv), cwd=str(self.workdir), env=env,
                                           timeout=max(1, math.ceil(timeout)))
        except self._sdk.DaytonaTimeoutError:
            # The daemon killed the process group at the timeout and kept no output.
            return ProcessResult(None, "", True, time.monotonic() - started)
        output = response.result or ""
        if on_output and output:
            on_output(output)
        return ProcessResult(response.exit_code, output[-OUTPUT_TAIL_BYTES:], False, time.monotonic() - started)

    def commit_all(self, message: str) -> str:
        """Commit what the task left and bring the task branch into the workspace clone (compare-and-swap)."""
        self._git("add", "-A")
        if self._git("diff", "--cached", "--quiet", ok=(0, 1)).exit_code == 1:
            self._git("commit", "-q", "--no-verify", "-m", message)
        head = self._git("rev-parse", "HEAD").result.strip()
        if head != self._landed:
            self._fetch_into_clone(head)
            if not self.clone.is_ancestor(self._start_sha, head):  # as a local sandbox checks: a merge trusts it
                raise SandboxError(f"the task's HEAD {head[:12]} does not descend from its start commit")
            with self._lock():
                # RefMoved when someone else moved the task ref meanwhile: their work is not overwritten.
                self.clone.update_ref(self._ref, head, self._landed, message="dagmerge: task commits")
            self._landed = head
        self._head = head
        return head

    def changed_files(self, since: str) -> list[str]:
        """Paths changed between ``since`` and the head; call after commit_all (the commits are local then)."""
        if self._head is None:
            raise SandboxError("changed_files needs commit_all first: the task's commits are still remote")
        return sorted(self.clone.changed_paths(since, self._head))

    def close(self) -> None:
        """Delete the sandbox (again: a no-op). Failures are logged, never raised over the task's outcome."""
        if self._deleted or not self._create_attempted:
            return
        try:
            remote = self._remote or self._client.get(self.name)
            remote.delete()
        except self._sdk.DaytonaNotFoundError:
            pass  # create() failed before the sandbox existed, or it is gone already
        except Exception:
            log.exception("Daytona sandbox %s could not be deleted; delete it by hand", self.name)
            return
        self._deleted = True

    # -- files the task reads and writes ----------------------------------------------------------

    def write_file(self, name: str, data: bytes) -> str:
        """Put ``data`` in the sandbox's scratch folder; returns its path there (for the task's env)."""
        path = str(self.scratch / name)
        self._require_remote().fs.upload_file(data, path)
        return path

    def read_file(self, name: str, max_bytes: int) -> bytes | None:
        """A file of the scratch folder, or None when the task did not write it; its type and size are
        checked in the sandbox first (``stat`` does not follow a link), so a huge file is never downloaded."""
        path = str(self.scratch / name)
        found = self._exec(["stat", "-c", "%f %s", "--", path], cwd=self.scratch, ok=(0, 1))
        if found.exit_code:
            return None
        mode, size = (found.result or "").split()
        check_readable(int(mode, 16), int(size), max_bytes)
        return self._require_remote().fs.download_file(path)

    # -- steps --------------------------------------------------------------------------------------

    def _create(self) -> RemoteSandbox:
        self._create_attempted = True
        # ephemeral: should it ever stop (auto-stop) before close() ran, Daytona deletes it at once.
        params: CreateSandboxFromImageParams | CreateSandboxFromSnapshotParams
        if self.settings.image:
            params = self._sdk.CreateSandboxFromImageParams(
                image=self.settings.image, name=self.name, labels={"dagmerge": "task"}, ephemeral=True)
        else:
            params = self._sdk.CreateSandboxFromSnapshotParams(
                snapshot=self.settings.snapshot, name=self.name, labels={"dagmerge": "task"}, ephemeral=True)
        return self._client.create(params, timeout=self.settings.create_timeout)

    def _ship_start_commit(self) -> None:
        """Send the start commit as a bundle unless the sandbox has it (a clone may)."""
        if self._git("cat-file", "-e", f"{self._start_sha}^{{commit}}", ok=(0, 1, 128)).exit_code == 0:
            return
        have = self._git("rev-parse", "--verify", "--quiet", "HEAD", ok=(0, 1)).result.strip()
        exclude = [f"^{have}"] if have and self.clone.rev_parse(have) else []
        remote_bundle = str(self.scratch / "start.bundle")
        with tempfile.TemporaryDirectory(prefix="dagmerge-bundle-") as tmp:
            bundle = Path(tmp) / "start.bundle"
            with self._lock():  # the task ref names the start commit while we read it
                self.clone.run("bundle", "create", str(bundle), self._ref, *exclude)
            self._require_remote().fs.upload_file(str(bundle), remote_bundle)
        self._git("fetch", "-q", "--no-tags", remote_bundle, f"+{self._ref}:refs/dagmerge/start")

    def _fetch_into_clone(self, head: str) -> None:
        """Bring the commits start..HEAD into the workspace clone as a bundle (none if it has them)."""
        if self.clone.rev_parse(head) == head:
            return  # e.g. the task reset its branch to an older commit
        remote_bundle = str(self.scratch / "task.bundle")
        self._git("bundle", "create", remote_bundle, "HEAD", f"^{self._start_sha}")
        with tempfile.TemporaryDirectory(prefix="dagmerge-bundle-") as tmp:
            bundle = Path(tmp) / "task.bundle"
            self._require_remote().fs.download_file(remote_bundle, str(bundle))
            with self._lock():
                self.clone.run("fetch", "-q", "--no-tags", "--no-write-fetch-head", str(bundle), "HEAD")
        if self.clone.rev_parse(head) != head:
            raise SandboxError(f"the bundle from the sandbox does not hold its head {head}")

    def _git(self, *args: str, ok: tuple[int, ...] = (0,)) -> ExecuteResponse:
        return self._exec([*REMOTE_GIT, *args], cwd=PurePosixPath(self.workdir), ok=ok, env=REMOTE_GIT_ENV)

    def _exec(self, argv: Sequence[str], *, cwd: PurePosixPath, ok: tuple[int, ...] = (0,),
              env: dict[str, str] | None = None) -> ExecuteResponse:
        try:
            response = self._require_remote().process.exec(
                shlex.join(argv), cwd=str(cwd), env=env, timeout=GIT_STEP_TIMEOUT)
        except self._sdk.DaytonaError as exc:
            raise SandboxError(f"{shlex.join(argv)} failed in the sandbox: {exc}") from exc
        if response.exit_code not in ok:
            raise SandboxError(f"{shlex.join(argv)} exited with {response.exit_code} in the sandbox: "
                               f"{(response.result or '').strip()[-2000:]}")
        return response

    def _require_remote(self) -> RemoteSandbox:
        if self._remote is None or self._deleted:
            raise SandboxError("the Daytona sandbox is not prepared (or already deleted)")
        return self._remote
