"""The Claude CLI under bubblewrap: the claude executor's agent and the agent resolver reach the Anthropic
API and their working directory, nothing else of the worker.

The SDK spawns the CLI itself (``cli_path``) with the worker's environment overlaid by ``options.env``, so
confinement is a launcher put in the CLI's place: a small script written per session into a private folder.
It keeps the variables the agent may hold from the environment the SDK gives it (the API key, proxies, the
caller's own), hands them to bwrap through a memfd (not a command line other users can read) and execs
bwrap around the real CLI. The sandbox is the one ``isolation.wrap`` builds for tasks, with the network on
(the CLI talks to the API), a fresh writable home, the CLI's folder read-only and the caller's hidden
folders (DAGMERGE_HOME, the worker's credentials, /run) hidden. Killing the launcher's process (the SDK does
at the end or the timeout) is killing bwrap, which tears the sandbox's PID namespace down.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from merges.engine.isolation import Isolation, wrap

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions

# What the CLI needs from the worker's environment: its key and options, and a way out to the API.
AGENT_ENV_PREFIXES = ("ANTHROPIC_", "CLAUDE_")
AGENT_ENV_NAMES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy",
                   "SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS")
FILE_BYTES = 1 << 30  # RLIMIT_FSIZE, as for tasks
# The confined CLI talks to the API only: no telemetry, error reports or update checks (other hosts).
FIXED_ENV = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}

_LAUNCHER = """\
import json, os, resource, sys
plan = json.loads({plan!r})
env = {{name: value for name, value in os.environ.items() if value and
        (name in plan["names"] or name.startswith(tuple(plan["prefixes"])))}}
env.update(plan["env"])
options = plan["options"] + [arg for name, value in env.items() for arg in ("--setenv", name, value)]
fd = os.memfd_create("dagmerge-agent-bwrap-args", 0)
os.write(fd, b"".join(option.encode() + b"\\0" for option in options))
os.lseek(fd, 0, os.SEEK_SET)
resource.setrlimit(resource.RLIMIT_FSIZE, (plan["file_bytes"], plan["file_bytes"]))
os.execve(plan["bwrap"], [plan["bwrap"], "--args", str(fd), "--", plan["cli"], *sys.argv[1:]], env)
"""


class AgentRefused(RuntimeError):
    """The agent cannot run here as configured: no bubblewrap and no trusted-code mode, or no CLI."""


@dataclass(frozen=True)
class AgentConfinement:
    """Where the agent may look, set by the caller that knows the worker: ``hide`` (dagmerge's home, the
    worker's credentials), ``readonly`` (a task's borrowed objects), ``writable`` besides its working
    directory (a task's scratch folder). ``trusted``: run unconfined where bubblewrap does not work."""

    isolation: Isolation
    trusted: bool = False
    hide: tuple[Path, ...] = ()
    readonly: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()


def agent_environment(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus what the CLI needs; the worker's other variables blanked.

    The SDK starts the CLI with the worker's environment overlaid by ``options.env`` and offers no way to
    drop a variable, so the worker's secrets (database URL, secret key, other API keys) are overridden with
    "": unconfined (trusted mode) the agent's Read tool could otherwise show them from /proc/self/environ.
    Confined, the launcher drops them altogether.
    """
    blanked = {name: "" for name in os.environ
               if not (name.startswith(AGENT_ENV_PREFIXES) or name in AGENT_ENV_NAMES)}
    return {**blanked, **base}


@contextlib.contextmanager
def confined(options: ClaudeAgentOptions, confinement: AgentConfinement | None) -> Iterator[ClaudeAgentOptions]:
    """``options`` whose CLI runs confined to ``options.cwd``; as they are without a confinement (the caller
    chose none) or, in trusted mode, where bubblewrap does not work. The launcher's folder is removed after."""
    if confinement is None:
        yield options
        return
    if not confinement.isolation.isolated:
        if not confinement.trusted:
            raise AgentRefused(f"the agent runs only under bubblewrap and it is unavailable "
                               f"({confinement.isolation.reason}); install bubblewrap, or set "
                               "DAGMERGE_TRUSTED_CODE=1 to run it unconfined on this machine")
        yield options
        return
    cli = _real_cli(options.cli_path)
    folder = Path(tempfile.mkdtemp(prefix="dagmerge-agent-"))
    try:
        home = folder / "home"
        home.mkdir()
        launcher = folder / "claude"
        launcher.write_text(f"#!{sys.executable} -IS\n" + _LAUNCHER.format(plan=json.dumps(_plan(
            cli, Path(str(options.cwd)), home, confinement, names=[n for n, v in options.env.items() if v]))))
        launcher.chmod(0o700)
        yield replace(options, cli_path=str(launcher))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _plan(cli: Path, workdir: Path, home: Path, confinement: AgentConfinement,
          names: Sequence[str]) -> dict[str, object]:
    """What the launcher needs, none of it secret: bwrap's options but the variables, and which to pass."""
    argv = wrap(["cli"], workdir=workdir, writable=[home, *confinement.writable],
                readonly=[cli.parent, *confinement.readonly],
                hide=confinement.hide, network=True, env={}, bwrap=confinement.isolation.bwrap)
    return {"bwrap": confinement.isolation.bwrap, "options": argv[1:-2], "cli": str(cli),
            "names": sorted({*names, *AGENT_ENV_NAMES, "PATH", "LANG", "LC_ALL", "TZ"}),
            "prefixes": list(AGENT_ENV_PREFIXES), "env": {"HOME": str(home), "TMPDIR": "/tmp", **FIXED_ENV},
            "file_bytes": FILE_BYTES}


def _real_cli(cli_path: str | os.PathLike[str] | None) -> Path:
    """The CLI the SDK would start, found here: left to the SDK, it might start one outside the launcher."""
    if cli_path is None:
        import claude_agent_sdk

        bundled = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
        found = str(bundled) if bundled.is_file() else shutil.which("claude")
        if found is None:
            raise AgentRefused("Claude Code CLI not found (neither bundled with claude-agent-sdk nor on PATH)")
        cli_path = found
    return Path(os.path.realpath(cli_path))
