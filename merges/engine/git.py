"""A small git wrapper: argument lists, an explicit cwd, never a shell, a minimal environment.

dagmerge operates on repositories it did not write (CVE-2022-24765, CVE-2024-32002), so every call
neutralises what a repository's config could make git run: hooks, fsmonitor, ssh and credential
programs, pagers, editors and signing programs, submodule recursion, and every filter, textconv and merge
driver and remote program the config names (listed by ``git config`` in the repository first, which runs
nothing, so includes and conditional includes count as git will count them). The environment is an
allow-list: no secret of the worker reaches git or anything git starts; only network calls
(``network=True``) keep what they need to authenticate (HOME for the operator's own ~/.gitconfig and
~/.ssh, SSH_AUTH_SOCK), and they time out.

``processes.check_io_allowed`` runs before each git process starts: it raises inside a database
transaction, where no I/O belongs.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merges.engine.git_config import NETWORK_TIMEOUT_S, ConfigUnreadable, git_environment, neutral_config
from merges.engine.processes import check_io_allowed

ZERO_SHA = "0" * 40


_SHA = re.compile(rb"[0-9a-f]{40}")


def _packed_ref(path: Path, ref: bytes) -> bytes | None:
    """The value ``packed-refs`` gives ``ref``; None when it lists no such ref (or there is no such file)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        sha, _, name = line.partition(b" ")
        if name == ref and not line.startswith((b"#", b"^")):
            return sha
    return None


class GitError(Exception):
    """git exited with a status the caller did not expect."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(argv)} failed ({returncode}): {self.stderr}")


class RefMoved(GitError):
    """A compare-and-swap ref update found the ref at another value than expected."""


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

    def _argv(self, args: Sequence[str], cwd: Path, env: dict[str, str]) -> list[str]:
        return ["git", *(arg for key, value in neutral_config(cwd, env) for arg in ("-c", f"{key}={value}")), *args]

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
        where, extra = Path(cwd or self.repo), {**self._extra_env, **(env or {})}
        try:
            proc = subprocess.run(
                self._argv(args, where, extra),
                cwd=where,
                input=input,
                capture_output=True,
                env=git_environment(extra, network=network),
                timeout=timeout or (NETWORK_TIMEOUT_S if network else None),
                check=False,
            )
        except ConfigUnreadable as exc:  # not run: it would have failed on that config as git does, with 128
            proc = subprocess.CompletedProcess(list(args), 128, b"", str(exc).encode())
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

    def branch_head(self, ref: str) -> str | None:
        """``rev_parse`` of a branch ref (``refs/heads/…``, holding a commit), read from the repository's ref
        files without starting git: a merge reads its ticket's ref on every landing. A loose ref wins over
        ``packed-refs``, as git reads them (both are replaced by renames, so a read sees a whole value);
        whatever the files do not plainly say (a symbolic ref, a linked worktree, a reftable store) is
        asked of git."""
        parts = ref.split("/")
        if parts[:2] != ["refs", "heads"] or len(parts) < 3 or any(p in ("", ".", "..") for p in parts):
            return self.rev_parse(ref)
        git_dir = self.repo if (self.repo / "HEAD").is_file() else self.repo / ".git"
        if (git_dir / "reftable").exists():
            return self.rev_parse(ref)
        value: bytes | None
        try:
            value = (git_dir / ref).read_bytes().strip()
        except FileNotFoundError:
            value = _packed_ref(git_dir / "packed-refs", ref.encode())
        except OSError:  # a folder where a ref would be, a .git file: git knows
            return self.rev_parse(ref)
        if value is None:
            return None
        return value.decode() if _SHA.fullmatch(value) else self.rev_parse(ref)

    def tree_of(self, rev: str) -> str:
        return self.text("rev-parse", "--verify", "--end-of-options", f"{rev}^{{tree}}")

    def check_ref_format(self, ref: str) -> bool:
        return self.run("check-ref-format", ref, ok=(0, 1)).returncode == 0

    def update_ref(self, ref: str, new: str, old: str | None, message: str = "dagmerge") -> None:
        """Compare-and-swap: move ``ref`` to ``new`` only if it is still at ``old`` (None: must not exist)."""
        self.update_refs([(ref, new, old)], message)

    def update_refs(self, moves: Sequence[tuple[str, str, str | None]], message: str = "dagmerge") -> None:
        """``update_ref`` for several refs in one transaction: every (ref, new, old) moves, or none does."""
        commands = "".join(f"update {ref}\0{new}\0{old or ZERO_SHA}\0" for ref, new, old in moves)
        proc = self.run("update-ref", "-m", message, "-z", "--stdin", input=commands.encode(), ok=(0, 1, 128))
        if proc.returncode != 0:
            raise RefMoved(["update-ref", "--stdin", *(ref for ref, _, _ in moves)], proc.returncode,
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
