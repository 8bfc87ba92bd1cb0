"""A task owns its repository's .git: nothing it writes there runs in dagmerge's git or reaches the clone.

Each test submits a ticket on a real repository and runs it with the ThreadDispatcher. The task plants
programs in its .git config, hooks and attributes; the programs are a spy on the host that records each
run of itself. /tmp is private under bubblewrap, so only dagmerge's own git (commit, fetch into the clone,
merges, publish) could make the spy's marker appear.
"""

from __future__ import annotations

import time

import pytest

from coordination.running import workspace
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = pytest.mark.django_db(transaction=True)

CLONE = 'clone=$(dirname "$(cat .git/objects/info/alternates)")'  # the clone's path, which the task can learn


def planting(spy) -> str:
    """Every config key that makes git run a program, set in the task's own repository, and attributes that
    name them for every file; a nested repository with a filter of its own; a conditional include (which no
    reading of the config file from outside the repository evaluates) defining one more filter."""
    keys = {
        "filter.evil.clean": spy.command("filter-clean"), "filter.evil.smudge": spy.command("filter-smudge"),
        "filter.evil.process": spy.command("filter-process"), "filter.evil.required": "true",
        "credential.helper": f"!{spy.command('credential-helper')}", "core.sshCommand": spy.command("ssh"),
        "core.fsmonitor": spy.command("fsmonitor"), "core.hooksPath": ".git/evil-hooks",
        "core.pager": spy.command("pager"), "core.editor": spy.command("editor"),
        "diff.external": spy.command("diff-external"), "diff.evil.textconv": spy.command("textconv"),
        "merge.evil.driver": spy.command("merge-driver"), "gpg.program": spy.command("gpg"),
        "commit.gpgSign": "true", "core.alternateRefsCommand": spy.command("alternate-refs"),
        "uploadpack.packObjectsHook": spy.command("pack-objects-hook"), "protocol.ext.allow": "always",
        "includeIf.onbranch:work.path": "included.cfg",
    }
    hooks = ("pre-commit", "commit-msg", "post-commit", "reference-transaction", "post-index-change",
             "post-checkout", "pre-auto-gc", "post-rewrite", "upload-pack")
    return "; ".join([
        *(f"git config {key} '{value}'" for key, value in keys.items()),
        f"printf '[filter \"included\"]\\n\\tclean = {spy.command('included-filter')}\\n' > .git/included.cfg",
        "mkdir -p .git/evil-hooks",
        *(f"printf '#!/bin/sh\\n{spy.command(hook)}\\n' > .git/evil-hooks/{hook}" for hook in hooks),
        "chmod +x .git/evil-hooks/*",
        "printf '* filter=evil diff=evil merge=evil\\n*.txt filter=included\\n' > .gitattributes",
        "git init -q nested && echo n > nested/n.txt && git -C nested add n.txt",
        "git -C nested -c user.name=task -c user.email=task@localhost commit -qm nested",
        f"git -C nested config filter.evil.clean '{spy.command('nested-filter')}'",
        "printf '* filter=evil\\n' > nested/.gitattributes && echo dirty >> nested/n.txt",
        "printf '[submodule \"nested\"]\\n\\tpath = nested\\n\\turl = ./nested\\n' > .gitmodules",
        "echo planted > a.txt",
    ])


def test_programs_a_task_plants_in_its_repository_never_run_and_never_reach_the_clone(tmp_path, spy):
    repo = source_repo(tmp_path)
    branches, fresh_config = [], None
    for round_ in ("planted", "a later ticket on the same repository"):
        tasks = [
            {"key": "A", "command": sh(planting(spy) if round_ == "planted" else "echo again > a.txt")},
            {"key": "B", "depends_on": ["A"], "command": sh("echo b > b.txt")},
            {"key": "C", "depends_on": ["A"], "command": sh("echo c > c.txt")},
            {"key": "D", "depends_on": ["B", "C"], "command": sh("test -f a.txt && test -f b.txt && test -f c.txt")},
        ]
        ticket = run_ticket(repo, tasks, verify_command="true")  # commit, fetch, merge, verify, publish
        assert ticket.status == "done", ticket.error  # its own repository was the task's to configure
        clone_config = (workspace.clone_path(ticket.repository_id) / "config").read_text()
        fresh_config = fresh_config or clone_config
        assert spy.runs() == [], f"{round_}: dagmerge's git ran what the task planted: {spy.runs()}"
        assert clone_config == fresh_config and "evil" not in clone_config
        assert "evil" not in (repo.path / ".git" / "config").read_text()
        branches.append(ticket.branch)
    # The files travel (to the source too); they name drivers nothing defines.
    assert "* filter=evil" in repo.show(branches[0], ".gitattributes")


@pytest.mark.parametrize("tampering", [
    pytest.param(f"{CLONE}; mv .git .git-old; ln -s $clone .git", id="dot-git-symlink-to-the-clone"),
    pytest.param(f"{CLONE}; rm -rf .git; echo \"gitdir: $clone\" > .git", id="dot-git-gitfile"),
    pytest.param(f"{CLONE}; echo $clone/../elsewhere/objects >> .git/objects/info/alternates",
                 id="alternates-rewritten"),
    pytest.param(f"{CLONE}; echo $clone > .git/commondir; echo 'ref: refs/heads/ticket/1' > .git/HEAD",
                 id="commondir-to-the-clone"),
    pytest.param(f"{CLONE}; rm -rf .git/refs; ln -s $clone/refs .git/refs; echo 'ref: refs/heads/ticket/1' > .git/HEAD",
                 id="refs-symlinked-into-the-clone"),
    pytest.param("mkdir -p .git/logs; ln -sf /etc/dagmerge-reflog-escape .git/logs/HEAD", id="reflog-symlink"),
    pytest.param("rm .git/config; mkfifo .git/config", id="config-a-fifo"),
])
def test_a_task_that_turns_its_repository_into_a_door_is_refused_and_the_clone_is_untouched(tmp_path, tampering):
    repo = source_repo(tmp_path)
    started = time.monotonic()
    ticket = run_ticket(repo, [{"key": "A", "command": sh(f"echo work > work.txt; {tampering}")}])
    a = ticket.tasks.get(key="A")
    assert time.monotonic() - started < 60  # a FIFO is refused, not read
    assert a.status == "failed" and a.error.startswith("TamperedRepository: refused: the task"), a.error
    assert "\n" not in a.error
    clone = workspace.clone_git(ticket.repository_id)
    refs = clone.text("for-each-ref", "--format=%(refname) %(objectname)").splitlines()
    assert sorted(refs) == sorted([f"refs/heads/{ticket.branch} {ticket.base_sha}",
                                   f"refs/heads/{a.branch} {ticket.base_sha}",
                                   f"refs/remotes/source/main {ticket.base_sha}"])
    clone.run("fsck", "--no-progress")  # nothing written into it through the task's links
    assert not (tmp_path / "elsewhere").exists()


def test_a_task_that_commits_in_its_own_repository_keeps_its_history(tmp_path):
    """The refusals above leave ordinary use alone: commits, a branch, gc and reflogs are the task's."""
    repo = source_repo(tmp_path)
    git = "git -c user.name=task -c user.email=task@localhost"
    ticket = run_ticket(repo, [{"key": "A", "command": sh(
        f"echo one > one.txt; {git} add one.txt; {git} commit -qm 'task: one'; {git} checkout -qb side; "
        f"echo two > two.txt; {git} add two.txt; {git} commit -qm 'task: two'; {git} gc -q; echo three > three.txt")}])
    assert ticket.status == "done", ticket.error
    a = ticket.tasks.get(key="A")
    subjects = repo.git.text("log", "--format=%s", a.head_sha).splitlines()
    assert subjects == ["A: A", "task: two", "task: one", "initial"]
    assert repo.git.is_ancestor(a.head_sha, ticket.head_sha)
