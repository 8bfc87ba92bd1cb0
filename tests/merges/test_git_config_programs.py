"""No config a repository holds — written by a task, an agent, a verify command or whoever made the source —
makes dagmerge's git run a program: not in the config file, not through ``include.path``, not through an
``includeIf`` (gitdir, onbranch, hasconfig), not through a ``.git`` file pointed at another repository (what
an agent or a verify command could do to the merge worktree they may write).

Each repository is armed with every key that runs a program, each naming a spy that records its label in a
marker file. The same git commands are run twice on twin repositories: by plain git, to show each trap is
real (the spy runs), and by dagmerge's ``Git``, where the marker must never appear.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from merges.engine.git import Git, GitError
from tests.gitrepo import Repo

WAYS = ["config", "include", "includeIf-gitdir", "includeIf-onbranch", "includeIf-hasconfig", "dot-git-elsewhere"]
HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg", "post-commit", "post-checkout", "reference-transaction",
         "pre-auto-gc", "post-rewrite")
# What plain git runs in these twins: every kind of program the config can name.
ARMED = {"filter-clean", "filter-smudge", "filter-process", "textconv", "diff-command", "merge-driver", "fsmonitor",
         "hook pre-commit", "hook post-checkout", "ssh", "credential", "gpg"}


class Unauthorized(BaseHTTPRequestHandler):
    """Asks for credentials: git then asks its credential helpers."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="dagmerge-test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def asks_for_credentials():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/repo.git"
    server.shutdown()
    server.server_close()


def armed_twin(root: Path, way: str) -> tuple[Repo, Path, Path]:
    """A repository with two branches conflicting in a file every driver applies to, another one to fetch
    from, and config naming the spy for every program; returns it, the other one and the marker."""
    root.mkdir()
    marker, spy = root / "spy-ran", root / "spy"
    spy.write_text(f'#!/bin/sh\necho "$1" >> {marker}\ncase "$1" in filter-clean|filter-smudge) cat;; esac\n')
    spy.chmod(0o755)
    hooks = root / "hooks"
    hooks.mkdir()
    for hook in (*HOOKS, "gpg"):  # gpg.program is run without a shell: a program of its own
        label = hook if hook == "gpg" else f"hook {hook}"
        (hooks / hook).write_text(f"#!/bin/sh\n{spy} '{label}' </dev/null\n")
        (hooks / hook).chmod(0o755)
    repo = Repo(root / "repo")
    repo.commit({".gitattributes": "* filter=evil diff=evil merge=evil\n*.p filter=proc\n", "a.txt": "base\n"})
    repo.branch("side")
    repo.commit({"a.txt": "side\n"})
    repo.checkout("main")
    repo.commit({"a.txt": "main\n"})
    other = Repo(root / "other")
    other.commit({"o.txt": "o\n"})
    programs = f"""[filter "evil"]
\tclean = {spy} filter-clean
\tsmudge = {spy} filter-smudge
\trequired = true
[filter "proc"]
\tprocess = {spy} filter-process
[diff "evil"]
\ttextconv = {spy} textconv
\tcommand = {spy} diff-command
[merge "evil"]
\tdriver = {spy} merge-driver %O %A %B
[core]
\tfsmonitor = {spy} fsmonitor
\thooksPath = {hooks}
\tsshCommand = {spy} ssh
\tpager = {spy} pager
\teditor = {spy} editor
\talternateRefsCommand = {spy} alternate-refs
[credential]
\thelper = !{spy} credential
[diff]
\texternal = {spy} diff-external
[gpg]
\tprogram = {hooks / "gpg"}
[commit]
\tgpgSign = true
"""
    git_dir = repo.path / ".git"
    if way == "dot-git-elsewhere":
        git_dir = root / "elsewhere.git"
        shutil.move(repo.path / ".git", git_dir)
        (repo.path / ".git").write_text(f"gitdir: {git_dir}\n")
    included = root / "included.cfg"
    included.write_text(programs)
    condition = {"include": None, "includeIf-gitdir": f"gitdir:{repo.path}/", "includeIf-onbranch": "onbranch:main",
                 "includeIf-hasconfig": f"hasconfig:remote.*.url:{other.path}"}
    with open(git_dir / "config", "a") as config:
        config.write(f'[remote "upstream"]\n\turl = {other.path}\n')
        if way in ("config", "dot-git-elsewhere"):
            config.write(programs)
        elif way == "include":
            config.write(f"[include]\n\tpath = {included}\n")
        else:
            config.write(f'[includeIf "{condition[way]}"]\n\tpath = {included}\n')
    return repo, other.path, marker


def commands(other: Path, url: str) -> list[tuple[list[str], bool]]:
    """(git arguments, over the network) of the commands that would start each program."""
    return [(["status"], False), (["add", "-A"], False), (["commit", "-q", "-m", "more"], False),
            (["diff", "HEAD~1", "HEAD"], False), (["log", "-p", "-2"], False),
            (["checkout", "-q", "-f", "HEAD~1", "--", "a.txt"], False),
            (["merge-tree", "--write-tree", "main", "side"], False), (["merge-file", "-p", "a.txt", "a.txt", "a.txt"],
                                                                      False),
            (["fetch", "-q", str(other), "main:refs/remotes/other/main"], False), (["gc", "--auto"], False),
            (["ls-remote", "ssh://spy.invalid/repo.git"], True), (["ls-remote", url], True), (["add", "new.p"], False)]


def change(repo: Path, args: list[str]) -> None:
    """A change for the clean filters to see; the process filter's file is new, and last: the spy speaks no
    protocol, so plain git fails on every command that meets a tracked file of it."""
    (repo / "a.txt").write_text("changed\n")
    if args == ["add", "new.p"]:
        (repo / "new.p").write_text("new\n")


def plain_git(repo: Path, args: list[str]) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost"}
    subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("way", WAYS)
def test_no_program_a_repository_config_names_runs_in_dagmermes_git(tmp_path, way, asks_for_credentials):
    control, other, ran = armed_twin(tmp_path / "plain", way)
    for args, _network in commands(other, asks_for_credentials):
        change(control.path, args)
        plain_git(control.path, args)
    assert ARMED <= set(ran.read_text().splitlines()), "the traps are real: plain git runs each program"

    repo, other, marker = armed_twin(tmp_path / "dagmerge", way)
    git = Git(repo.path)
    for args, network in commands(other, asks_for_credentials):
        change(repo.path, args)
        git.run(*args, ok=range(256), network=network, timeout=60)
    assert not marker.exists(), marker.read_text()
    assert git.run("log", "-1", "--format=%s").stdout == b"more\n", "and the commands did their work"


def test_a_config_git_cannot_read_fails_the_call_before_it_runs(tmp_path):
    """Had the listing failed quietly, the call would run with nothing of the config reset; git refuses such a
    config in every command anyway, so the call fails as git would (status 128), without starting."""
    repo = Repo(tmp_path / "repo")
    repo.commit({"a.txt": "a\n"})
    with open(repo.path / ".git" / "config", "a") as config:
        config.write("[filter \"evil\"]\n\tclean = touch ran\n[broken\n")
    with pytest.raises(GitError) as failed:
        repo.git.run("status")
    assert failed.value.returncode == 128 and "bad config line" in failed.value.stderr
    assert repo.git.run("add", "-A", ok=(0, 128)).returncode == 128
    assert not (repo.path / "ran").exists()
