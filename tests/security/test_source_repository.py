"""A source repository dagmerge did not write: its config, hooks and the repositories inside its tree run
nothing in dagmerge's git, from submit through task runs, merges, the verify command and publishing.

The source's own config names the spy as fsmonitor and hooks directory, its .git/hooks hold every hook
(receive hooks included: a local push would start them), and its tree carries a bare repository whose
config names the spy too. Publishing to a local source is a fetch and a compare-and-swap from its side,
never a push.
"""

from __future__ import annotations

import subprocess

import pytest

from coordination.domain.spec import SpecError
from coordination.models import Event, Repository, Task, Ticket
from tests.gitrepo import Repo, numbered_lines, replace_line
from tests.scenarios import run_ticket, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)

HOOKS = ("pre-receive", "update", "proc-receive", "reference-transaction", "post-receive", "post-update",
         "push-to-checkout", "pre-commit", "commit-msg", "post-commit", "post-checkout", "post-merge",
         "pre-push", "post-index-change", "pre-auto-gc", "post-rewrite", "fsmonitor-watchman")


def booby_trapped(tmp_path, spy) -> Repo:
    text = numbered_lines(30)
    repo = source_repo(tmp_path, {"README.md": "# project\n", "config.txt": text})
    nested = Repo(tmp_path / "nested")
    nested.commit({"n.txt": "n\n"})
    bare = repo.path / "vendor" / "evil.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(nested.path), str(bare)], check=True)
    with (bare / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = {spy.command('nested-fsmonitor')}\n\thooksPath = {tmp_path}/hooks\n")
    (bare / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    (bare / "refs" / "heads" / "main").write_text(nested.head() + "\n")  # committed: git keeps no empty folders
    repo.commit({}, "vendor a bare repository")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for folder in (hooks, repo.path / ".git" / "hooks"):
        for hook in HOOKS:
            (folder / hook).write_text(f"#!/bin/sh\n{spy.command(hook)}\n")
            (folder / hook).chmod(0o755)
    repo.git.run("config", "core.fsmonitor", spy.command("fsmonitor"))
    repo.git.run("config", "core.hooksPath", str(hooks))
    repo.git.run("config", "receive.denyCurrentBranch", "ignore")
    return repo


def test_a_booby_trapped_source_runs_nothing_through_submit_tasks_merges_verify_and_publish(tmp_path, spy):
    repo = booby_trapped(tmp_path, spy)
    text = numbered_lines(30)
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh("echo a >> README.md; ls vendor/evil.git > listing.txt")},
        {"key": "B", "depends_on": ["A"], "command": sh(f"printf '{replace_line(text, 10, 'B')}' > config.txt")},
        {"key": "C", "depends_on": ["A"], "command": sh(f"printf '{replace_line(text, 11, 'C')}' > config.txt")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("git -C vendor/evil.git for-each-ref > refs.txt")},
    ], verify_command="true")
    assert ticket.status == "done", ticket.error
    assert ticket.joins.get().merge_attempts.get().status == "merged"  # B and C's edits merged line by line
    assert repo.head(f"refs/heads/{ticket.branch}") == ticket.head_sha  # published
    assert "config" in repo.show(ticket.head_sha, "listing.txt")  # the trap was there for the tasks to see
    assert spy.runs() == [], spy.runs()


@pytest.mark.parametrize("repository", [
    "--upload-pack=touch {marker}",
    "-c core.sshCommand=touch {marker}",
    "ext::sh -c touch% {marker}",
    "ext::sh -c 'touch {marker}'",
])
def test_a_repository_that_is_an_option_or_a_command_is_refused_and_runs_nothing(tmp_path, spy, repository):
    before = _rows()
    with pytest.raises(SpecError) as refused:
        submit(_fake(repository.format(marker=spy.marker)), [{"key": "A", "command": "true"}])
    assert "\n" not in str(refused.value) and "does not exist" in str(refused.value)
    assert _rows() == before and spy.runs() == []


@pytest.mark.parametrize(("branch", "shown"), [
    ("main..other", "'main..other'"),
    ("main@{1}", "'main@{1}'"),
    ("-main", "'-main'"),
    ("--upload-pack=touch", "'--upload-pack=touch'"),
    ("ma\x01in", "'ma\\x01in'"),
    ("main\n", "'main\\n'"),
    ("main\nrefs/heads/other", "'main\\nrefs/heads/other'"),
    ("ma\tin", "'ma\\tin'"),
    ("main.lock", "'main.lock'"),
    ("main/", "'main/'"),
    ("@", "'@'"),
    ("HEAD", "'HEAD'"),
    ("ma~in", "'ma~in'"),
    ("ma:in", "'ma:in'"),
])
def test_a_base_branch_git_would_misread_is_refused_at_submit_in_one_line_writing_nothing(tmp_path, branch, shown):
    repo = source_repo(tmp_path)
    repo.git.run("branch", "other")
    before = _rows()
    with pytest.raises(SpecError) as refused:
        submit(repo, [{"key": "A", "command": "true"}], base_branch=branch)
    assert str(refused.value) == f"{shown} is not a valid branch name"
    assert _rows() == before
    assert not (tmp_path / "workspace" / "repos").exists()  # not even the clone


def _rows() -> list[int]:
    return [model.objects.count() for model in (Repository, Ticket, Task, Event)]


def _fake(path: str) -> Repo:
    """A Repo naming ``path`` without creating it."""
    repo = Repo.__new__(Repo)
    repo.path = path
    return repo
