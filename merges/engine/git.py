"""A small git wrapper: argument lists, an explicit cwd, never a shell, a minimal environment.

dagmerge operates on repositories it did not write (CVE-2022-24765, CVE-2024-32002), so every call
neutralises what a repository's config could make git run: hooks, fsmonitor, ssh and credential
programs, pagers and editors, and every filter, textconv and merge driver the repository names (read
with ``git config`` first, which runs nothing). The environment is an allow-list: no secret of the
worker reaches git or anything git starts; only network calls (``network=True``) keep what they need to
authenticate (HOME for the operator's own ~/.gitconfig and ~/.ssh, SSH_AUTH_SOCK), and they time out.

``processes.check_io_allowed`` runs before each git process starts: it raises inside a database
transaction, where no I/O belongs.
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merges.engine.processes import check_io_allowed

ZERO_SHA = "0" * 40


class GitError(Exception):
    """git exited with a status the caller did not expect."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(argv)} failed ({returncode}): {self.stderr}")


class RefMoved(GitError):
    """A compare-and-swap ref update found the ref at another value than expected."""


@functools.cache
def _empty_hooks_dir() -> str:
    """One empty folder per user, reused by every process (a fresh one per process would pile up)."""
    path = Path(tempfile.gettempdir()) / f"dagmerge-nohooks-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid() or any(path.iterdir()):
        return tempfile.mkdtemp(prefix="dagmerge-nohooks-")  # someone else's, or not empty: not ours to use
    return str(path)


ENV_ALLOWED = ("PATH", "LANG", "TZ")
NETWORK_ENV_ALLOWED = ("HOME", "SSH_AUTH_SOCK", "http_proxy", "https_proxy", "no_proxy", "HTTPS_PROXY",
                       "HTTP_PROXY", "NO_PROXY")
NETWORK_TIMEOUT_S = 300.0

# Config keys that make git run a program, reset to harmless values on every call.
NEUTRAL_CONFIG = (
    ("core.fsmonitor", "false"), ("core.untrackedCache", "false"), ("core.sshCommand", "ssh"),
    ("core.pager", "cat"), ("core.editor", "true"), ("core.askPass", ""), ("credential.helper", ""),
    ("protocol.ext.allow", "never"), ("uploadpack.packObjectsHook", ""), ("diff.external", ""),
    ("commit.gpgSign", "false"), ("tag.gpgSign", "false"), ("gpg.program", "false"),
    ("sequence.editor", "true"), ("core.alternateRefsCommand", ""), ("receive.procReceiveRefs", ""),
)
# Per-driver keys: any name the repository's config defines gets them emptied.
DRIVER_KEYS = {"filter": ("clean", "smudge", "process"), "diff": ("textconv", "command"), "merge": ("driver",)}


def _git_env(extra: dict[str, str] | None = None, network: bool = False) -> dict[str, str]:
    """An allow-list, not the worker's environment: ANTHROPIC_API_KEY, DATABASE_URL and the like never
    reach git, its hooks (none run) or a receive-pack on a local push. The global config is the
    operator's own and read only for network calls (credentials for the source repository)."""
    allowed = ENV_ALLOWED + (NETWORK_ENV_ALLOWED if network else ())
    env = {k: os.environ[k] for k in allowed if k in os.environ}
    env.setdefault("PATH", os.defpath)
    if not network:
        env["GIT_CONFIG_GLOBAL"] = os.devnull
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        LC_ALL="C",
        GIT_AUTHOR_NAME="dagmerge",
        GIT_AUTHOR_EMAIL="dagmerge@localhost",
        GIT_COMMITTER_NAME="dagmerge",
        GIT_COMMITTER_EMAIL="dagmerge@localhost",
    )
    if extra:
        env.update(extra)
    return env


@functools.lru_cache(maxsize=256)
def _drivers_in(config: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    """(key, "") for each driver program named in a config file; cached while the file is unchanged."""
    proc = subprocess.run(["git", "config", "--file", config, "--includes", "--name-only", "--list", "-z"],
                          capture_output=True, env=_git_env(), check=False, timeout=30)
    overrides = []
    for key in proc.stdout.decode(errors="replace").split("\0"):
        section, _, rest = key.partition(".")
        name, _, _ = rest.rpartition(".")
        if section.lower() in DRIVER_KEYS and name:
            overrides += [(f"{section}.{name}.{k}", "") for k in DRIVER_KEYS[section.lower()]]
    if any(key.lower().startswith("filter.") for key, _ in overrides):
        overrides += [(f"filter.{k.split('.')[1]}.required", "false") for k, _ in overrides if k.startswith("filter.")]
    return tuple(dict.fromkeys(overrides))


@dataclass(frozen=True)
class StageEntry:
    mode: str
    oid: str


@dataclass
class ConflictEntry:
    """One conflicted path of a merge-tree result: its index stages and git's conflict types."""

    path: str
    stages: dict[int, StageEntry] = field(default_factory=dict)
    types: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class MergeTreeResult:
    tree: str
    clean: bool
    conflicts: list[ConflictEntry] = field(default_factory=list)

    @property
    def conflicted_paths(self) -> list[str]:
        return [c.path for c in self.conflicts]


class Git:
    """git commands run against one repository (a work tree or a bare directory)."""

    def __init__(self, repo: str | os.PathLike[str], env: dict[str, str] | None = None):
        self.repo = Path(repo)
        self._extra_env = env or {}

    @classmethod
    def outside_repository(cls) -> Git:
        """For commands that need no repository (ls-remote, check-ref-format)."""
        return cls(tempfile.gettempdir())

    def _argv(self, args: Sequence[str]) -> list[str]:
        settings = [("core.hooksPath", _empty_hooks_dir()), *NEUTRAL_CONFIG, *self._driver_overrides()]
        return ["git", *(arg for key, value in settings for arg in ("-c", f"{key}={value}")), *args]

    def _driver_overrides(self) -> list[tuple[str, str]]:
        """Empty every filter / textconv / merge driver the repository's config names (reading config
        runs nothing), so a planted ``filter.x.clean`` never runs in dagmerge's ``add`` or ``diff``."""
        config = self.repo / "config" if (self.repo / "config").is_file() else self.repo / ".git" / "config"
        try:
            stat = config.stat()
        except OSError:
            return []
        return list(_drivers_in(str(config), stat.st_mtime_ns, stat.st_size))

    def run(
        self,
        *args: str,
        input: bytes | None = None,
        ok: Iterable[int] = (0,),
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        network: bool = False,
    ) -> subprocess.CompletedProcess[bytes]:
        check_io_allowed()
        try:
            proc = subprocess.run(
                self._argv(args),
                cwd=cwd or self.repo,
                input=input,
                capture_output=True,
                env=_git_env({**self._extra_env, **(env or {})}, network=network),
                timeout=timeout or (NETWORK_TIMEOUT_S if network else None),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(args, -1, f"timed out after {exc.timeout:g} s") from None
        except OSError as exc:  # the repository folder is gone (or git is): say so like any git failure
            raise GitError(args, -1, f"cannot run git in {cwd or self.repo}: {exc.strerror}") from None
        if proc.returncode not in tuple(ok):
            raise GitError(args, proc.returncode, proc.stderr.decode(errors="replace"))
        return proc

    def text(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, **kwargs).stdout.decode().strip()

    # -- refs -----------------------------------------------------------------------------------

    def rev_parse(self, rev: str) -> str | None:
        proc = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1))
        return proc.stdout.decode().strip() or None

    def tree_of(self, rev: str) -> str:
        return self.text("rev-parse", "--verify", "--end-of-options", f"{rev}^{{tree}}")

    def check_ref_format(self, ref: str) -> bool:
        return self.run("check-ref-format", ref, ok=(0, 1)).returncode == 0

    def update_ref(self, ref: str, new: str, old: str | None, message: str = "dagmerge") -> None:
        """Compare-and-swap: move ``ref`` to ``new`` only if it is still at ``old`` (None: must not exist)."""
        proc = self.run("update-ref", "-m", message, ref, new, old or ZERO_SHA, ok=(0, 1, 128))
        if proc.returncode != 0:
            raise RefMoved(["update-ref", ref, new, old or ZERO_SHA], proc.returncode,
                           proc.stderr.decode(errors="replace"))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, ok=(0, 1)).returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        return self.run("merge-base", a, b, ok=(0, 1)).stdout.decode().strip() or None

    def fork_points(self, head: str, shas: Sequence[str]) -> dict[str, str | None]:
        """``merge_base(head, sha)`` for many commits from one ``rev-list``; ``merge-base`` runs only for a
        commit whose history meets ``head``'s more than once (e.g. it merged ``head`` since forking).

        The commits must be full shas (they key the result).
        """
        if not shas:
            return {}
        out = self.text("rev-list", "--boundary", "--parents", *shas, f"^{head}", "--")
        parents: dict[str, list[str]] = {}
        boundary: set[str] = set()
        for line in out.splitlines():
            if line.startswith("-"):
                boundary.add(line[1:].split()[0])
            else:
                commit, *rest = line.split()
                parents[commit] = rest
        forks: dict[str, str | None] = {}
        for sha in shas:
            if sha not in parents:  # already in head's history
                forks[sha] = sha
                continue
            met, seen, stack = set(), set(), [sha]
            while stack:
                commit = stack.pop()
                if commit in boundary:
                    met.add(commit)
                elif commit not in seen:
                    seen.add(commit)
                    stack.extend(parents.get(commit, ()))
            forks[sha] = met.pop() if len(met) == 1 else self.merge_base(head, sha)
        return forks

    # -- objects --------------------------------------------------------------------------------

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.text(*args, input=message.encode())

    def write_blob(self, content: bytes) -> str:
        return self.text("hash-object", "-w", "--stdin", input=content)

    def tree_with(self, base_tree: str, files: Mapping[str, tuple[str, bytes | str] | None]) -> str:
        """``base_tree`` with some paths replaced or removed (None), via a scratch index. A replacement is
        (mode, content bytes) or (mode, the id of a blob already in the repository)."""
        lines = []
        for path, change in files.items():
            if change is None:
                lines.append(f"0 {ZERO_SHA}\t{path}\n")
            else:
                mode, content = change
                oid = content if isinstance(content, str) else self.write_blob(content)
                lines.append(f"{mode} {oid}\t{path}\n")
        with tempfile.TemporaryDirectory(prefix="dagmerge-index-") as scratch:
            env = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
            self.run("read-tree", base_tree, env=env)
            self.run("update-index", "--index-info", input="".join(lines).encode(), env=env)
            return self.text("write-tree", env=env)

    def read_blobs(self, specs: Sequence[str]) -> list[bytes | None]:
        """Contents of many objects (``<oid>`` or ``<tree-ish>:<path>``) in one ``cat-file --batch``."""
        if not specs:
            return []
        out = self.run("cat-file", "--batch", input="".join(f"{s}\n" for s in specs).encode()).stdout
        blobs: list[bytes | None] = []
        pos = 0
        for _ in specs:
            nl = out.index(b"\n", pos)
            header = out[pos:nl]
            pos = nl + 1
            if header.endswith((b" missing", b" ambiguous")):  # "<spec> missing": a spec may hold spaces
                blobs.append(None)
                continue
            _oid, kind, size = header.split()  # found: "<oid> <type> <size>"
            blobs.append(out[pos : pos + int(size)] if kind == b"blob" else None)  # a tree or commit: skipped
            pos += int(size) + 1
        return blobs

    def changed_paths_many(self, pairs: Sequence[tuple[str, str]]) -> list[frozenset[str]]:
        """Paths that differ between each (old, new) commit pair, in one ``diff-tree --stdin``.

        The commits must be full shas: diff-tree echoes anything else instead of diffing it.
        """
        if not pairs:
            return []
        stdin = "".join(f"{new} {old}\n" for old, new in pairs).encode()
        args = ("diff-tree", "-r", "-z", "--name-only", "--no-renames", "--always", "--stdin")
        tokens = [t for t in self.run(*args, input=stdin).stdout.split(b"\0") if t]
        # Output per pair: "<new>\0" then "<path>\0"*, in input order (--always: even when empty).
        result: list[set[str]] = []
        pos = 0
        for index, (_old, new) in enumerate(pairs):
            if tokens[pos].decode() != new:
                raise GitError(args, 0, f"unexpected diff-tree output at {tokens[pos]!r}")
            pos += 1
            following = pairs[index + 1][1].encode() if index + 1 < len(pairs) else None
            paths = set()
            while pos < len(tokens) and tokens[pos] != following:
                paths.add(tokens[pos].decode(errors="surrogateescape"))
                pos += 1
            result.append(paths)
        return [frozenset(r) for r in result]

    def changed_paths(self, old: str, new: str) -> frozenset[str]:
        out = self.run("diff-tree", "-r", "-z", "--name-only", "--no-renames", old, new).stdout
        return frozenset(p.decode(errors="surrogateescape") for p in out.split(b"\0") if p)

    # -- merging --------------------------------------------------------------------------------

    def merge_tree(self, ours: str, theirs: str) -> MergeTreeResult:
        return self.merge_tree_many([(ours, theirs)])[0]

    def merge_tree_many(self, pairs: Sequence[tuple[str, str]]) -> list[MergeTreeResult]:
        """Run several in-memory merges in one ``git merge-tree --stdin`` process."""
        if not pairs:
            return []
        stdin = "".join(f"{ours} {theirs}\n" for ours, theirs in pairs).encode()
        # diff3 style: the written blobs carry the base section, which reviewers and resolvers need.
        out = self.run("-c", "merge.conflictStyle=diff3", "merge-tree", "--stdin", "-z", "--write-tree",
                       "--messages", input=stdin).stdout
        tokens = out.split(b"\0")
        results = []
        pos = 0
        for ours, theirs in pairs:
            status, tree = tokens[pos].decode(), tokens[pos + 1].decode()
            pos += 2
            entries: dict[str, ConflictEntry] = {}
            while tokens[pos]:
                info, _tab, raw_path = tokens[pos].partition(b"\t")
                mode, oid, stage = info.decode().split()
                path = raw_path.decode(errors="surrogateescape")
                entries.setdefault(path, ConflictEntry(path)).stages[int(stage)] = StageEntry(mode, oid)
                pos += 1
            pos += 1
            while tokens[pos]:
                count = int(tokens[pos])
                paths = [t.decode(errors="surrogateescape") for t in tokens[pos + 1 : pos + 1 + count]]
                kind = tokens[pos + 1 + count].decode()
                message = tokens[pos + 2 + count].decode(errors="replace").strip()
                pos += count + 3
                if kind.startswith("CONFLICT"):
                    for path in paths:
                        entry = entries.setdefault(path, ConflictEntry(path))
                        entry.types.append(kind)
                        entry.messages.append(message)
            pos += 1
            if status not in ("0", "1"):
                raise GitError(["merge-tree", ours, theirs], int(status), "merge-tree could not merge")
            results.append(MergeTreeResult(tree=tree, clean=status == "1", conflicts=list(entries.values())))
        return results


def init_repository(path: Path, branch: str = "main") -> Git:
    path.mkdir(parents=True, exist_ok=True)
    git = Git(path)
    git.run("init", "-q", "-b", branch)
    return git
