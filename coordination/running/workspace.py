"""dagmerge's own clone of each repository, and publishing ticket branches back to the source.

The clone is bare and lives under DAGMERGE_WORKSPACE; task sandboxes are repositories that borrow its
objects (a pool of reused ones per repository, ``sandboxes/pool.py``). Working in a clone means a user's
checkout is never touched, and ``ticket/<id>`` is pushed back after each merge with a lease naming the
value dagmerge last pushed, so a branch someone else moved is never overwritten.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from coordination.running.sandboxes.local import PYTHON_PREFIXES
from merges.engine.agent_sandbox import AgentConfinement
from merges.engine.git import Git, GitError
from merges.engine.isolation import Isolation


class RepositoryError(Exception):
    """The source repository or one of its branches cannot be used."""


def repos_root() -> Path:
    return Path(settings.DAGMERGE_WORKSPACE) / "repos"


def worktrees_root() -> Path:
    return Path(settings.DAGMERGE_WORKSPACE) / "worktrees"


def sandbox_pool_root(repository_id: int) -> Path:
    """The reused task checkouts of one repository (``sandboxes/pool.py``)."""
    return Path(settings.DAGMERGE_WORKSPACE) / "sandboxes" / str(repository_id)


# Where a worker's home keeps credentials. The rest of the home stays readable (pyenv or a virtualenv
# often lives there, and tasks run its Python); a worker meant to hold other secrets runs as its own user.
HOME_SECRETS = (".ssh", ".claude", ".claude.json", ".config", ".gnupg", ".netrc", ".git-credentials", ".gitconfig",
                ".aws", ".azure", ".kube", ".docker", ".pypirc", ".npmrc", ".cargo/credentials.toml",
                ".local/share/keyrings", ".bash_history", ".python_history", ".psql_history", ".pgpass")


def hidden_from_tasks() -> list[Path]:
    """What a confined task must not see: dagmerge's home, secrets folder and workspace (database, secret
    key, every other task and clone), the credentials in the worker's home, and /run (the database's and
    docker's sockets). The task's own folder and the clone's objects are bound back inside it."""
    home = Path.home()
    hidden = {settings.DAGMERGE_HOME, settings.DAGMERGE_SECRETS_DIR, settings.DAGMERGE_WORKSPACE, Path("/run"),
              *(home / s for s in HOME_SECRETS)}
    return sorted(p for p in hidden if p != Path("/"))


def agent_confinement(readonly: Sequence[Path] = (), writable: Sequence[Path] = ()) -> AgentConfinement:
    """How the Claude CLI runs (the claude executor's agent, the agent resolver): under bubblewrap, seeing
    what a task sees — its own folder, the network, ``readonly`` and ``writable`` — or unconfined in
    trusted-code mode."""
    return AgentConfinement(Isolation.detect(), trusted=settings.DAGMERGE_TRUSTED_CODE,
                            hide=tuple(hidden_from_tasks()), readonly=(*PYTHON_PREFIXES, *readonly),
                            writable=tuple(writable))


def clone_path(repository_id: int) -> Path:
    return repos_root() / f"{repository_id}.git"


def clone_git(repository_id: int) -> Git:
    return Git(clone_path(repository_id))


@contextmanager
def clone_lock(repository_id: int) -> Iterator[None]:
    """Serialize fetches and worktree bookkeeping on one clone across processes on this host."""
    repos_root().mkdir(parents=True, exist_ok=True)
    with open(repos_root() / f"{repository_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def normalize_source(url_or_path: str) -> str:
    """Local paths become absolute; a path that is not a git repository is refused here."""
    if "://" in url_or_path or url_or_path.startswith("git@"):
        return url_or_path
    path = Path(url_or_path).expanduser().resolve()
    if not path.exists():
        raise RepositoryError(f"repository {url_or_path} does not exist")
    try:
        Git(path).text("rev-parse", "--git-dir")
    except GitError:
        raise RepositoryError(f"{url_or_path} is not a git repository") from None
    return str(path)


def remote_branch_sha(source: str, branch: str) -> str:
    """The commit ``branch`` points at in the source, read without writing anything."""
    if not valid_branch_name(branch):
        raise RepositoryError(f"{branch!r} is not a valid branch name")  # repr: one line, whatever it holds
    try:
        out = Git.outside_repository().text("ls-remote", "--heads", "--end-of-options", source, f"refs/heads/{branch}",
                                              network=True)
    except GitError as exc:
        raise RepositoryError(f"cannot read {source}: {exc.stderr.splitlines()[-1] if exc.stderr else exc}") from None
    if not out:
        raise RepositoryError(f"base branch '{branch}' does not exist in {source}")
    return out.split()[0]


def valid_branch_name(branch: str) -> bool:
    """What ``git branch`` would accept: a valid ref, and not an option, ``@`` or ``HEAD``, which git's
    commands read as something else."""
    return (not branch.startswith("-") and branch not in ("@", "HEAD")
            and Git.outside_repository().check_ref_format(f"refs/heads/{branch}"))


def sync_clone(repository_id: int, source: str, branch: str) -> str:
    """Create the bare clone if needed and fetch ``branch`` into it; return its commit."""
    path = clone_path(repository_id)
    git = Git(path)
    with clone_lock(repository_id):
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            git.run("init", "-q", "--bare")
        git.run("fetch", "-q", "--no-tags", "--end-of-options", source,
                f"+refs/heads/{branch}:refs/remotes/source/{branch}", network=True)
    sha = git.rev_parse(f"refs/remotes/source/{branch}")
    if sha is None:
        raise RepositoryError(f"base branch '{branch}' does not exist in {source}")
    return sha


def publish(repository_id: int, source: str, ref: str, new: str, expected: str) -> None:
    """Set ``ref`` in the source to ``new``, only if it is still at ``expected`` ('' = must not exist).

    A remote source gets a push with a lease. A local one is updated from its own side instead (fetch
    from the workspace, then a compare-and-swap ``update-ref``), because a local push would start the
    source's receive hooks, which dagmerge does not run.
    """
    if "://" in source or source.startswith("git@"):
        clone_git(repository_id).run(
            "push", "-q", "--no-verify", f"--force-with-lease={ref}:{expected}", "--end-of-options", source,
            f"{new}:{ref}", network=True,
        )
        return
    target = Git(source)
    incoming = f"refs/dagmerge/incoming/{repository_id}"
    target.run("fetch", "-q", "--no-tags", "--no-write-fetch-head", "--end-of-options", str(clone_path(repository_id)),
               f"+{ref}:{incoming}")
    try:
        if target.rev_parse(incoming) != new:
            raise GitError(["fetch", ref], 1, f"the workspace's {ref} is not at {new}")
        target.update_ref(ref, new, expected or None, message="dagmerge: publish")
    finally:
        target.run("update-ref", "-d", incoming)
