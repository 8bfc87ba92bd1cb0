"""What dagmerge's git runs with: an allow-listed environment and config that runs no program.

Every git call gets ``-c`` settings resetting each config key that makes git start a program (hooks,
fsmonitor, ssh, credential, pager, editor and signing programs, submodule recursion) and, for each name the
config git will read defines, its filter, textconv, merge driver or remote programs. Those names are listed
by git itself in the repository, so includes and conditional includes count as git counts them.
"""

from __future__ import annotations

import functools
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


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
    ("gpg.openpgp.program", "false"), ("gpg.x509.program", "false"), ("gpg.ssh.program", "false"),
    ("gpg.ssh.defaultKeyCommand", ""), ("merge.verifySignatures", "false"),
    # Nested repositories (submodules) have config of their own that no scan here reads: never recurse.
    ("fetch.recurseSubmodules", "false"), ("submodule.recurse", "false"), ("push.recurseSubmodules", "no"),
)
# Per-name keys: any name the config git reads defines gets them reset (a filter, textconv or merge driver).
# A remote's uploadpack / receivepack cannot be reset this way (git takes the first one given), and need not
# be: dagmerge fetches and pushes by path or URL, never by a remote's name, so no remote section applies.
NAMED_KEYS = {"filter": (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")),
              "diff": (("textconv", ""), ("command", "")), "merge": (("driver", ""),)}
SCAN_TIMEOUT_S = 30.0
_SCANS_KEPT = 256


def git_environment(extra: dict[str, str] | None = None, network: bool = False) -> dict[str, str]:
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


Stamps = tuple[tuple[str, tuple[int, ...] | None], ...]
# The files of a git dir (a work tree's .git, or a bare repository) whose appearing or changing changes
# what config git reads: its config, a commondir naming another repository's, a worktree's own config.
WATCHED = ("config", "commondir", "config.worktree")


class ConfigUnreadable(Exception):
    """git cannot read the config of the repository a call is about to run in."""


@dataclass(frozen=True)
class _Scan:
    """The named programs the config of one repository defines, and the files it came from with their
    state when read (None: it depends on more than files — an include — so it is read again every call)."""

    overrides: tuple[tuple[str, str], ...]
    stamps: Stamps | None


_scans: dict[tuple[str, tuple[tuple[str, str], ...]], _Scan] = {}


def _stamp(paths: Iterable[str]) -> Stamps:
    """Each path's state; a folder's by its inode alone. A git dir's own mtime moves with every index or
    ref git writes in it, and reading the config again for each (a ``git config`` process every few calls of
    a task's commit) told nothing: what a new entry there could change is watched by name (``WATCHED``)."""
    stamps: list[tuple[str, tuple[int, ...] | None]] = []
    for path in paths:
        try:
            info = os.lstat(path)
            stamps.append((path, (info.st_ino,) if stat.S_ISDIR(info.st_mode) else
                           (info.st_ino, info.st_mtime_ns, info.st_size)))
        except OSError:
            stamps.append((path, None))
    return tuple(stamps)


def neutral_config(repo: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """The ``-c`` settings of a git call in ``repo`` with ``env`` (the call's extra variables)."""
    return [("core.hooksPath", _empty_hooks_dir()), *NEUTRAL_CONFIG, *_named_overrides(repo, env)]


def _named_overrides(repo: Path, env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Reset every filter / textconv / merge driver the config git will read names.

    git itself lists the config, in the repository and with the environment of the call (reading config
    runs nothing), so what it lists is what the call would use: the config of whatever ``.git`` points at,
    ``include.path`` and ``includeIf`` (gitdir, onbranch, hasconfig) followed as git follows them. Cached
    while the files it came from are unchanged, unless it holds an include (an ``onbranch`` answer moves
    with HEAD, an included file may appear later): then it is read for every call.
    """
    key = (str(repo), tuple(sorted(env.items())))
    cached = _scans.get(key)
    if cached is not None and cached.stamps is not None and _stamp(p for p, _ in cached.stamps) == cached.stamps:
        return cached.overrides
    watched = [str(repo / ".git"), *(str(repo / folder / name) for folder in (".git", ".") for name in WATCHED)]
    # OSError (no such folder) and TimeoutExpired (a config that never ends) fail the call as they would fail it.
    proc = subprocess.run(["git", "config", "--list", "--includes", "--show-origin", "--name-only", "-z"],
                          cwd=repo, capture_output=True, env=git_environment(env), check=False,
                          timeout=SCAN_TIMEOUT_S)
    if proc.returncode:  # a config git cannot read: the call would fail on it too, so fail before it starts
        raise ConfigUnreadable(proc.stderr.decode(errors="replace").strip() or f"git config: {proc.returncode}")
    fields = proc.stdout.decode(errors="replace").split("\0")
    overrides: list[tuple[str, str]] = []
    includes = False
    for origin, name in zip(fields[::2], fields[1::2], strict=False):  # a trailing ""
        if origin.startswith("file:"):
            watched.append(str(repo / origin[len("file:"):]))
        section, _, rest = name.partition(".")
        subsection, _, _ = rest.rpartition(".")
        includes = includes or section.lower() in ("include", "includeif")
        if section.lower() in NAMED_KEYS and subsection:
            overrides += [(f"{section}.{subsection}.{k}", v) for k, v in NAMED_KEYS[section.lower()]]
    scan = _Scan(tuple(dict.fromkeys(overrides)), None if includes else _stamp(dict.fromkeys(watched)))
    if len(_scans) >= _SCANS_KEPT:
        _scans.clear()
    _scans[key] = scan
    return scan.overrides
