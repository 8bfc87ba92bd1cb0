from __future__ import annotations

import json

import pytest

from coordination.models import Event, Task
from merges.models import MergeAttempt
from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = pytest.mark.django_db(transaction=True)

WRITE_RESULT = 'printf "{\\"%s\\": \\"%s\\"}" "$1" "$2" > "$DAGMERGE_RESULT"'


def _writer(key: str, path: str, text: str) -> str:
    return sh(f'mkdir -p "$(dirname {path})"; printf "{text}\\n" > {path}; '
              f'printf "{{\\"{key}\\": \\"{text}\\"}}" > "$DAGMERGE_RESULT"')


def test_join_continuation_gets_merged_code_and_merged_results(tmp_path):
    repo = source_repo(tmp_path)
    check = ('test -f src/x.py && test -f src/y.py && test -f src/a.py && '
             'cp "$DAGMERGE_CONTEXT" seen-context.json')
    ticket = run_ticket(repo, [
        {"key": "A", "command": _writer("a", "src/a.py", "a")},
        {"key": "B", "depends_on": ["A"], "command": _writer("x", "src/x.py", "x")},
        {"key": "C", "depends_on": ["A"], "command": _writer("y", "src/y.py", "y")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh(check)},
    ])

    assert ticket.status == "done", ticket.error
    d = ticket.tasks.get(key="D")
    assert d.synthesis_context["merged"] == {"x": "x", "y": "y"}
    context = json.loads(repo.show(ticket.head_sha, "seen-context.json"))
    assert context["synthesis"]["sources"]["B"]["data"] == {"x": "x"}
    assert context["synthesis"]["sources"]["C"]["changed_files"] == ["src/y.py"]
    # published back to the source repository: the user finds the result there
    assert repo.head(f"refs/heads/{ticket.branch}") == ticket.head_sha
    for path in ("src/a.py", "src/x.py", "src/y.py"):
        assert repo.show(ticket.branch, path)


def test_continuation_starts_only_after_both_sources_are_merged(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "A", "command": _writer("a", "a.txt", "a")},
        {"key": "B", "depends_on": ["A"], "command": sh("sleep 0.5; echo b > b.txt")},
        {"key": "C", "depends_on": ["A"], "command": sh("echo c > c.txt")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("test -f b.txt && test -f c.txt")},
    ])

    assert ticket.status == "done"
    join = ticket.joins.get()
    attempt = join.merge_attempts.get()
    assert sorted(attempt.merge_order) == ["B", "C"]
    assert attempt.conflict_scores == {"B": 0, "C": 0}
    d, b, c = (ticket.tasks.get(key=k) for k in "DBC")
    assert d.start_sha == attempt.result_sha
    assert d.started_at > max(b.finished_at, c.finished_at)
    merged_event = Event.objects.get(ticket=ticket, kind="join.merged")
    claimed = Event.objects.get(ticket=ticket, kind="task.claimed", payload__task="D")
    assert claimed.pk > merged_event.pk


def test_conflicting_join_waits_for_review_without_touching_the_ticket_branch(tmp_path):
    base_text = numbered_lines(60)
    repo = source_repo(tmp_path, {"config.py": base_text})
    b_text, c_text = replace_line(base_text, 50, "TIMEOUT = 5"), replace_line(base_text, 50, "TIMEOUT = 9")
    ticket = run_ticket(repo, [
        {"key": "B", "command": sh(f"printf '{b_text}' > config.py")},
        {"key": "C", "command": sh(f"printf '{c_text}' > config.py")},
        {"key": "D", "depends_on": ["B", "C"], "command": "true"},
    ])

    assert ticket.status == "awaiting_review"
    join = ticket.joins.get()
    assert join.status == "awaiting_review"
    attempt = MergeAttempt.objects.get(join=join)
    assert attempt.status == "conflicted"
    [conflict] = attempt.conflict_files.all()
    assert conflict.path == "config.py" and conflict.kind == "content" and conflict.hunk_count == 1
    assert conflict.hunks[0]["base"] == ["line 50"]
    assert {conflict.hunks[0]["ours"][0], conflict.hunks[0]["theirs"][0]} == {"TIMEOUT = 5", "TIMEOUT = 9"}
    assert ticket.head_sha == ticket.base_sha
    assert repo.head(f"refs/heads/{ticket.branch}") == ticket.base_sha
    assert ticket.tasks.get(key="D").status == "pending"
    assert attempt.partial_sha  # the first source merged cleanly in memory, the ref was not moved


def test_failing_task_fails_the_ticket_and_blocks_everything_downstream(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh("echo working; echo 'database unreachable' >&2; exit 3")},
        {"key": "B", "depends_on": ["A"], "command": "true"},
        {"key": "C", "depends_on": ["B"], "command": "true"},
        {"key": "E", "command": "true"},
    ])

    assert ticket.status == "failed"
    a = ticket.tasks.get(key="A")
    assert a.status == "failed"
    assert a.error == "command exited with status 3: database unreachable"
    assert "working" in a.log
    assert [t.status for t in ticket.tasks.filter(key__in="BC").order_by("key")] == ["blocked", "blocked"]
    assert not ticket.tasks.get(key="B").started_at
    assert ticket.tasks.get(key="E").status == "succeeded"
    assert "A (command exited with status 3" in ticket.error


def test_task_timeout_kills_the_command_and_fails_the_task(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": "sleep 30", "timeout_seconds": 1}])
    a = ticket.tasks.get(key="A")
    assert a.status == "failed" and a.error == "timed out after 1 s"


def test_task_environment_is_minimal_and_uncommitted_work_is_committed(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret-value")
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("env > env.txt")}])
    a = ticket.tasks.get(key="A")
    env_file = repo.show(a.head_sha, "env.txt")
    assert "sk-secret-value" not in env_file
    assert f"DAGMERGE_BRANCH={a.branch}" in env_file
    assert a.result["changed_files"] == ["env.txt"] and a.result["exit_code"] == 0
    assert not any(p.name.startswith("t") for p in (tmp_path / "workspace" / "worktrees").iterdir())


def test_bad_result_file_fails_the_task_with_a_clear_message(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh('echo "{not json" > "$DAGMERGE_RESULT"')}])
    assert ticket.tasks.get(key="A").error.startswith("$DAGMERGE_RESULT is not valid JSON")


def test_ticket_ref_moved_underneath_the_engine_fails_loudly_and_is_not_overwritten(tmp_path):
    from coordination.domain import dispatch
    from coordination.jobs.dispatchers import ThreadDispatcher
    from coordination.jobs.driving import drive
    from coordination.running import workspace
    from tests.scenarios import submit

    repo = source_repo(tmp_path)
    pool = ThreadDispatcher(2)
    dispatch.use(pool)
    ticket = submit(repo, [{"key": "A", "command": sh("sleep 0.5; echo a > a.txt")}])
    clone = workspace.clone_git(ticket.repository_id)
    intruder = clone.commit_tree(clone.tree_of(ticket.base_sha), [ticket.base_sha], "someone else\n")
    clone.update_ref(ticket.ref, intruder, ticket.base_sha)

    assert drive(ticket.pk, pool, timeout=30) == "failed"
    attempt = MergeAttempt.objects.get(ticket=ticket)
    assert attempt.status == "failed" and "moved underneath dagmerge" in attempt.error
    assert clone.rev_parse(ticket.ref) == intruder
    ticket.refresh_from_db()
    assert "merge #" in ticket.error and not Task.objects.get(ticket=ticket).landed


@pytest.mark.parametrize(("strategy", "expected_status", "d_status"), [
    ("all", "failed", "blocked"),
    ("success_only", "done", "succeeded"),
    ("quorum:2", "done", "succeeded"),
    ("quorum:3", "failed", "blocked"),
])
def test_partial_joins_go_on_with_the_sources_that_succeeded(tmp_path, strategy, expected_status, d_status):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "B", "command": sh("echo b > b.txt")},
        {"key": "C", "command": sh("echo c > c.txt")},
        {"key": "X", "command": sh("exit 1")},
        {"key": "D", "depends_on": ["B", "C", "X"], "join_strategy": strategy,
         "command": sh("test -f b.txt && test -f c.txt")},
    ])
    assert ticket.status == expected_status
    assert ticket.tasks.get(key="D").status == d_status
    if d_status == "succeeded":
        attempt = MergeAttempt.objects.get(join__continuation__key="D", join__ticket=ticket)
        assert sorted(i["name"] for i in attempt.incoming) == ["B", "C"]
