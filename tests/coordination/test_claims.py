from __future__ import annotations

import pytest

from coordination.domain.spec import SpecError
from coordination.models import Event, OwnershipClaim
from tests.scenarios import run_ticket, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_task_whose_claim_overlaps_a_running_task_waits_until_it_has_finished(tmp_path):
    """Seed scenario 2: A and B both claim auth.py and have no dependency between them."""
    repo = source_repo(tmp_path, {"auth.py": "def login(): ...\n"})
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh("sleep 0.5; echo '# A' >> auth.py"), "owned_files": ["auth.py"]},
        {"key": "B", "command": sh("echo '# B' >> auth.py"), "owned_files": ["*.py"]},
    ])

    a, b = ticket.tasks.get(key="A"), ticket.tasks.get(key="B")
    assert ticket.status == "done", ticket.error
    assert b.started_at > a.finished_at
    waiting = Event.objects.get(ticket=ticket, kind="task.waiting")
    assert waiting.payload["task"] == "B" and waiting.payload["on"] == "A" and waiting.payload["example"] == "auth.py"
    assert b.waiting_on == ""
    assert repo.show(ticket.branch, "auth.py") == "def login(): ...\n# A\n# B\n"  # B started from A's work
    assert not OwnershipClaim.objects.filter(task__ticket=ticket, released_at=None).exists()


def test_tasks_with_disjoint_claims_run_side_by_side(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh("sleep 0.4; echo a > a.py"), "owned_files": ["a.py"]},
        {"key": "B", "command": sh("sleep 0.4; echo b > b.py"), "owned_files": ["b.py"]},
    ])
    a, b = ticket.tasks.get(key="A"), ticket.tasks.get(key="B")
    assert a.started_at < b.finished_at and b.started_at < a.finished_at
    assert not Event.objects.filter(ticket=ticket, kind="task.waiting").exists()


def test_files_changed_outside_the_claim_are_recorded_as_a_violation(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("echo a > mine.py; echo x > theirs.py"),
                                "owned_files": ["mine.py"]}])
    violation = Event.objects.get(ticket=ticket, kind="task.ownership_violation")
    assert violation.payload["files"] == ["theirs.py"]
    assert ticket.tasks.get(key="A").result["ownership_violations"] == ["theirs.py"]


def test_predicted_overlaps_warn_at_submit_or_are_serialized_on_request(tmp_path):
    repo = source_repo(tmp_path, {"src/auth.py": "x\n"})
    tasks = [{"key": "A", "command": "true", "owned_files": ["src/**"]},
             {"key": "B", "command": "true", "owned_files": ["src/auth.py"]},
             {"key": "C", "depends_on": ["A"], "command": "true", "owned_files": ["src/*.py"]}]

    warned = submit(repo, tasks)
    warnings = Event.objects.filter(ticket=warned, kind="ticket.overlap_warning").order_by("pk")
    assert [(w.payload["tasks"], w.payload["example"]) for w in warnings] == [
        (["A", "B"], "src/auth.py"), (["B", "C"], "src/auth.py")]  # C depends on A, not on B

    serialized = submit(repo, tasks, serialize_overlaps=True)
    assert [t.key for t in serialized.tasks.get(key="B").depends_on.all()] == ["A"]
    assert sorted(t.key for t in serialized.tasks.get(key="C").depends_on.all()) == ["A", "B"]
    assert Event.objects.filter(ticket=serialized, kind="ticket.serialized").count() == 2


def test_a_bad_glob_is_a_spec_error(tmp_path):
    repo = source_repo(tmp_path)
    with pytest.raises(SpecError, match=r"task A: owned_files: bad pattern 'src/\[a-'"):
        submit(repo, [{"key": "A", "command": "true", "owned_files": ["src/[a-"]}])


def test_the_ticket_page_says_on_which_task_a_waiting_task_waits(tmp_path, client):
    from coordination.models import Task
    from coordination.scheduling import scheduler
    from tests import factories

    repo = source_repo(tmp_path, {"auth.py": "x\n"})
    ticket = submit(repo, [{"key": "A", "command": "true", "owned_files": ["auth.py"]},
                           {"key": "B", "command": "true", "owned_files": ["auth.py"]}])
    scheduler.advance(ticket.pk)  # the test's dispatcher keeps the jobs: A stays ready, B must wait
    assert Task.objects.get(ticket=ticket, key="B").waiting_on == "A (both claim auth.py)"

    client.force_login(factories.bob())
    page = client.get(f"/tickets/{ticket.pk}/").content.decode()
    assert "waits on A (both claim auth.py)" in page


def test_the_file_list_is_read_only_when_a_task_starts_waiting_on_a_claim(tmp_path):
    """Whether claims overlap does not need the files; the example a waiting task names does (an existing
    file if any), and reading them is a git process: done once, when B starts waiting, not on every event."""
    from coordination.models import Task
    from coordination.scheduling import scheduler

    repo = source_repo(tmp_path, {"src/auth.py": "x\n"})
    ticket = submit(repo, [{"key": "A", "command": "true", "owned_files": ["src/**"]},
                           {"key": "B", "command": "true", "owned_files": ["src/*.py"]},
                           {"key": "C", "command": "true", "owned_files": ["docs/**"]}])
    Task.objects.filter(ticket=ticket).update(status="pending", waiting_on="")
    scheduler.FILE_LISTS.clear()

    scheduler.advance(ticket.pk)
    assert dict(ticket.tasks.values_list("key", "status")) == {"A": "ready", "B": "pending", "C": "ready"}
    assert Task.objects.get(ticket=ticket, key="B").waiting_on == "A (both claim src/auth.py)"
    assert scheduler.FILE_LISTS.reads == 1

    Task.objects.filter(ticket=ticket, key="B").update(waiting_on="")
    scheduler.advance(ticket.pk)  # B starts waiting again: the files at this head are known by now
    assert Task.objects.get(ticket=ticket, key="B").waiting_on == "A (both claim src/auth.py)"
    assert scheduler.FILE_LISTS.reads == 1

    scheduler.FILE_LISTS.clear()
    scheduler.advance(ticket.pk)  # B still waits on the task it names: nothing new to say, no git
    assert scheduler.FILE_LISTS.reads == 0


def test_the_task_page_names_the_files_changed_outside_the_claim(tmp_path, client):
    from tests import factories

    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("echo x > theirs.py"), "owned_files": ["mine.py"]}])
    client.force_login(factories.bob())
    page = client.get(f"/tickets/{ticket.pk}/tasks/A/").content.decode()
    assert "Changed files outside its claim: <code>theirs.py</code>" in page
