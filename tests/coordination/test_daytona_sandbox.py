"""The Daytona sandbox through the real ``daytona`` SDK against a fake Daytona on 127.0.0.1."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest
from daytona import DaytonaError
from django.core.exceptions import ImproperlyConfigured

from coordination.running.sandboxes.base import UnreadableFile
from coordination.running.sandboxes.daytona import DaytonaSandbox, DaytonaSettings, SandboxError, settings_from_env
from merges.engine.git import Git, RefMoved
from tests.coordination.fake_daytona import FakeDaytona
from tests.gitrepo import Repo

pytestmark = pytest.mark.filterwarnings("ignore:Polling-only mode:DeprecationWarning")

REF = "refs/heads/ticket/1-task/A"


@pytest.fixture
def fake(tmp_path):
    server = FakeDaytona(tmp_path / "daytona").start()
    yield server
    server.stop()
    assert server.unhandled == [], "the SDK called routes the fake does not implement"


@pytest.fixture
def source(tmp_path) -> Repo:
    repo = Repo(tmp_path / "source")
    repo.commit({"README.md": "hello\n", "app.py": "print('v1')\n"}, "initial")
    return repo


@pytest.fixture
def clone(tmp_path, source) -> Git:
    """dagmerge's bare workspace clone of the source."""
    Git(tmp_path).run("clone", "-q", "--bare", str(source.path), str(tmp_path / "workspace.git"))
    return Git(tmp_path / "workspace.git")


def daytona_sandbox(fake: FakeDaytona, clone: Git, **kwargs) -> DaytonaSandbox:
    settings = DaytonaSettings(api_key=fake.api_key, api_url=fake.api_url, target="us")
    return DaytonaSandbox(clone, settings, nullcontext, name="t1-A-1", **kwargs)


def test_task_commits_arrive_on_the_task_branch_in_the_workspace_clone(fake, source, clone):
    start = source.head()
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, start)
        process = sandbox.run(["sh", "-c", "echo new > new.txt && echo v2 > app.py && echo done"], {}, 30)
        head = sandbox.commit_all("A: change things")
        changed = sandbox.changed_files(start)

    assert process.exit_code == 0 and process.output_tail == "done\n" and not process.timed_out
    assert clone.rev_parse(REF) == head != start
    assert clone.text("rev-parse", f"{head}^") == start
    assert clone.text("show", f"{head}:new.txt") == "new"
    assert changed == ["app.py", "new.txt"]
    assert [path for path, _ in fake.uploads] == [str(sandbox.scratch / "start.bundle")], "sent as a bundle"
    assert fake.live() == [] and fake.deletes() == list(fake.sandboxes)
    assert not fake.calls("/socket.io/"), "polling mode: the client opens no event stream"


def test_a_task_that_changes_nothing_leaves_the_branch_at_its_start(fake, source, clone):
    start = source.head()
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, start)
        sandbox.run(["true"], {}, 30)
        assert sandbox.commit_all("A: nothing") == start
    assert clone.rev_parse(REF) == start
    assert not fake.calls("/files/bulk-download")


def test_committing_again_lands_the_new_commits_too(fake, source, clone):
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        sandbox.run(["sh", "-c", "echo 1 > one.txt"], {}, 30)
        first = sandbox.commit_all("A: one")
        sandbox.run(["sh", "-c", "echo 2 > two.txt"], {}, 30)
        second = sandbox.commit_all("A: two")
    assert clone.rev_parse(REF) == second and clone.text("rev-parse", f"{second}^") == first


def test_a_task_that_resets_to_an_older_commit_is_refused_as_in_a_local_sandbox(fake, source, clone):
    """A merge takes a single task branch whose start is the ticket's head as it is: the branch must descend
    from its start, or landing it would quietly revert the work before it."""
    start = source.commit({"app.py": "print('v2')\n"}, "second")
    clone.run("fetch", "-q", str(source.path), f"{start}:refs/heads/main")
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, start)
        sandbox.run(["git", "reset", "-q", "--hard", "HEAD~1"], {}, 30)
        with pytest.raises(SandboxError, match="does not descend from its start commit"):
            sandbox.commit_all("A: undo")
    assert clone.rev_parse(REF) == start  # the task ref stays where the task started
    assert not fake.calls("/files/bulk-download")  # the clone had the commit: nothing travelled


def test_a_reachable_url_is_cloned_and_only_the_missing_commits_travel(fake, tmp_path, source, clone):
    # The ticket head exists only in the workspace clone (not published to the source yet).
    Git(tmp_path).run("clone", "-q", str(clone.repo), str(tmp_path / "ticket-work"))
    work = Repo(tmp_path / "ticket-work")
    ticket_head = work.commit({"app.py": "print('ticket')\n"}, "merged on the ticket branch")
    clone.run("fetch", "-q", str(work.path), f"{ticket_head}:refs/heads/ticket/1")

    with daytona_sandbox(fake, clone, clone_url=source.path.as_uri(), clone_branch="main") as sandbox:
        sandbox.prepare(REF, ticket_head)
        sandbox.run(["sh", "-c", "cat app.py > seen.txt"], {}, 30)
        head = sandbox.commit_all("A: look")

    assert clone.text("show", f"{head}:seen.txt") == "print('ticket')"
    assert fake.calls("/git/clone")
    [(_, bundle)] = fake.uploads
    prerequisites = [line for line in bundle.split(b"\n\n", 1)[0].decode().splitlines() if line.startswith("-")]
    assert prerequisites == [f"-{source.head()} initial"], "what the clone has is not shipped again"


def test_arguments_reach_the_command_exactly_and_host_paths_stay_behind(fake, source, clone):
    tricky = "it's a \"test\" with $HOME, `backticks` and a; semicolon"
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        process = sandbox.run(["printf", "%s|%s|%s", tricky, "$DAGMERGE_TASK", "x"],
                              {"DAGMERGE_TASK": "A", "PATH": "/nowhere", "HOME": "/worker/home"}, 30)
        env = sandbox.run(["sh", "-c", 'echo "$DAGMERGE_TASK $HOME"'], {"DAGMERGE_TASK": "A", "HOME": "/w"}, 30)
    assert process.output_tail == f"{tricky}|$DAGMERGE_TASK|x"
    assert env.output_tail.startswith("A ") and "/w" not in env.output_tail


def test_the_command_reads_its_context_and_its_result_comes_back(fake, source, clone):
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        context = sandbox.write_file("context.json", json.dumps({"task": "A"}).encode())
        result = str(sandbox.scratch / "result.json")
        sandbox.run(["sh", "-c", 'sed s/A/B/ "$DAGMERGE_CONTEXT" > "$DAGMERGE_RESULT"'],
                    {"DAGMERGE_CONTEXT": context, "DAGMERGE_RESULT": result}, 30)
        assert json.loads(sandbox.read_file("result.json", 1024) or b"") == {"task": "B"}
        assert sandbox.read_file("missing.json", 1024) is None
        sandbox.run(["sh", "-c", f"truncate -s 1G {sandbox.scratch}/big.json; ln -s /etc/passwd "
                                 f"{sandbox.scratch}/link.json"], {}, 30)
        downloads = len(fake.calls("/files/bulk-download"))
        for name, refusal in (("big.json", "holds 1073741824 bytes; at most 1024 are kept"),
                              ("link.json", "is a symbolic link, not a regular file")):
            with pytest.raises(UnreadableFile, match=refusal):
                sandbox.read_file(name, 1024)
        assert len(fake.calls("/files/bulk-download")) == downloads, "checked in the sandbox, never downloaded"
        sandbox.commit_all("A")
        assert sandbox.changed_files(source.head()) == [], "scratch files stay out of the repository"


def test_the_sandbox_is_deleted_when_the_command_fails(fake, source, clone):
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        process = sandbox.run(["sh", "-c", "echo broken >&2; exit 3"], {}, 30)
    assert process.exit_code == 3 and process.output_tail == "broken\n"
    assert fake.live() == [] and len(fake.deletes()) == 1


def test_the_sandbox_is_deleted_when_the_command_times_out(fake, source, clone):
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        process = sandbox.run(["sleep", "30"], {}, 1)
        head = sandbox.commit_all("A: timed out")
    assert process.timed_out and process.exit_code is None and process.duration_s < 10
    assert head == source.head()
    assert fake.live() == [] and len(fake.deletes()) == 1


def test_the_sandbox_is_deleted_when_prepare_fails(fake, tmp_path, source, clone):
    sandbox = daytona_sandbox(fake, clone, clone_url=(tmp_path / "no-such-repo").as_uri())
    with pytest.raises(DaytonaError):
        sandbox.prepare(REF, source.head())
    assert len(fake.created) == 1 and fake.live() == [] and len(fake.deletes()) == 1
    sandbox.close()  # closing again (execute's finally) asks nothing more
    assert len(fake.deletes()) == 1


def test_a_sandbox_that_never_starts_is_found_by_name_and_deleted(fake, source, clone):
    fake.create_state = "error"
    sandbox = daytona_sandbox(fake, clone)
    with pytest.raises(DaytonaError, match="error state"):
        sandbox.prepare(REF, source.head())
    assert len(fake.created) == 1 and fake.live() == [] and len(fake.deletes()) == 1


def test_a_task_ref_moved_meanwhile_is_not_overwritten(fake, source, clone):
    start = source.head()
    other = source.commit({"other.txt": "someone else\n"}, "elsewhere")
    clone.run("fetch", "-q", str(source.path), f"{other}:refs/heads/elsewhere")
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, start)
        clone.update_ref(REF, other, start)
        sandbox.run(["sh", "-c", "echo mine > mine.txt"], {}, 30)
        with pytest.raises(RefMoved):
            sandbox.commit_all("A: too late")
    assert clone.rev_parse(REF) == other
    assert fake.live() == []


def test_changed_files_before_commit_all_is_refused(fake, source, clone):
    with daytona_sandbox(fake, clone) as sandbox:
        sandbox.prepare(REF, source.head())
        with pytest.raises(SandboxError):
            sandbox.changed_files(source.head())


def test_settings_need_a_key_and_never_show_it():
    settings = settings_from_env({"DAYTONA_API_KEY": "sekrit", "DAYTONA_TARGET": "eu",
                                  "DAGMERGE_DAYTONA_SNAPSHOT": "dagmerge-base"})
    assert settings.target == "eu" and settings.snapshot == "dagmerge-base" and settings.image is None
    assert "sekrit" not in repr(settings)
    with pytest.raises(ImproperlyConfigured, match="DAYTONA_API_KEY"):
        settings_from_env({})
    with pytest.raises(ImproperlyConfigured, match="not both"):
        settings_from_env({"DAYTONA_API_KEY": "k", "DAGMERGE_DAYTONA_IMAGE": "python:3.12",
                           "DAGMERGE_DAYTONA_SNAPSHOT": "s"})


def test_the_image_or_snapshot_from_settings_reaches_the_create_request(fake, source, clone):
    for settings, expected in (
        (DaytonaSettings(api_key=fake.api_key, api_url=fake.api_url, image="python:3.12-slim"), "buildInfo"),
        (DaytonaSettings(api_key=fake.api_key, api_url=fake.api_url, snapshot="dagmerge-base"), "snapshot"),
    ):
        with DaytonaSandbox(clone, settings, nullcontext, name="t1-A-1") as sandbox:
            sandbox.prepare(REF, source.head())
        assert expected in fake.created[-1]
    assert "python:3.12-slim" in fake.created[0]["buildInfo"]["dockerfileContent"]
    assert fake.created[1]["snapshot"] == "dagmerge-base"
    assert all(body["name"].startswith("dagmerge-t1-A-1-") for body in fake.created)
