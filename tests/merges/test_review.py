"""A person settles what the ladder could not: decisions per hunk and per file, the server-side gate,
approve releasing the continuation, retry with a hint, dropping a source."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from coordination.domain import dispatch
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.review import actions as review_actions
from merges import review
from merges.models import MergeAttempt, ReviewAction
from tests.fakes.fake_claude import install, recorded_calls
from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)
BASE = numbered_lines(60)


def _edit(text: str, changes: dict[int, str]) -> str:
    for number, line in changes.items():
        text = replace_line(text, number, line)
    return text


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password="pw")


def _conflicted(tmp_path, files_b: dict, files_c: dict, base_files: dict | None = None, d_check: str = "true"):
    pool = ThreadDispatcher(3)
    dispatch.use(pool)
    repo = source_repo(tmp_path, base_files or {"notes.txt": BASE})

    def writer(files: dict) -> str:
        return sh("; ".join(f"rm -f {p}" if t is None else f"printf '{t}' > {p}" for p, t in files.items()))

    ticket = submit(repo, [
        {"key": "B", "title": "B's change", "command": writer(files_b)},
        {"key": "C", "title": "C's change", "command": writer(files_c)},
        {"key": "D", "depends_on": ["B", "C"], "command": sh(d_check)},
    ])
    assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
    return repo, ticket, pool, MergeAttempt.objects.get(join__ticket=ticket)


def test_a_person_decides_each_hunk_approves_and_the_continuation_runs_from_the_result(tmp_path, alice):
    b = _edit(BASE, {10: "B ten", 30: "B thirty", 50: "B fifty"})
    c = _edit(BASE, {10: "C ten", 30: "C thirty", 50: "C fifty"})
    repo, ticket, pool, attempt = _conflicted(tmp_path, {"notes.txt": b}, {"notes.txt": c},
                                              d_check="grep -q 'hand made' notes.txt")
    [conflict] = review.current_files(attempt)
    assert conflict.hunk_count == 3 and review.remaining_hunks(conflict) == 3
    ours_first = attempt.merge_order[0]  # the source merged first is "ours"

    review.decide_hunk(conflict.pk, 0, "theirs", alice)
    review.decide_hunk(conflict.pk, 1, "both_ours_first", alice)
    with pytest.raises(review.GateClosed, match="notes.txt: 1 undecided"):
        review_actions.request_approve(attempt.pk, alice)
    review.decide_hunk(conflict.pk, 2, "edit", alice, text="hand made fifty")

    review_actions.request_approve(attempt.pk, alice)
    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(ticket.pk, pool, timeout=60) == "done"

    ticket.refresh_from_db()
    merged = repo.show(ticket.branch, "notes.txt")
    theirs = "C" if ours_first == "B" else "B"
    assert f"{theirs} ten\n" in merged
    assert f"{ours_first} thirty\n{theirs} thirty\n" in merged and "hand made fifty\n" in merged
    attempt.refresh_from_db()
    assert attempt.status == "merged" and ticket.tasks.get(key="D").start_sha == attempt.result_sha
    actions = list(ReviewAction.objects.filter(attempt=attempt).values_list("action", flat=True))
    assert actions == ["decide_hunk", "decide_hunk", "decide_hunk", "approve"]
    assert "+hand made fifty" in ReviewAction.objects.filter(action="decide_hunk").last().detail["diff"]


def test_the_gate_refuses_markers_and_files_that_do_not_parse_whatever_was_sent(tmp_path, alice):
    base = "A = 1\nB = 2\n"
    _, ticket, _, attempt = _conflicted(tmp_path, {"conf.py": "A = 10\nB = 2\n"}, {"conf.py": "A = 20\nB = 2\n"},
                                        base_files={"conf.py": base})
    [conflict] = review.current_files(attempt)
    review.decide_hunk(conflict.pk, 0, "edit", alice, text="<<<<<<< mine\nA = 1\n>>>>>>> theirs")
    with pytest.raises(review.GateClosed, match="conflict markers left in conf.py"):
        review_actions.request_approve(attempt.pk, alice)
    review.decide_hunk(conflict.pk, 0, "edit", alice, text="A = = 3")
    with pytest.raises(review.GateClosed, match="conf.py does not parse"):
        review_actions.request_approve(attempt.pk, alice)
    review.undo_hunk(conflict.pk, 0, alice)
    assert review.remaining_hunks(review.current_files(attempt).get()) == 0  # back to the edit before
    attempt.refresh_from_db()
    assert attempt.status == "conflicted"


def test_modify_delete_and_binary_conflicts_are_settled_from_their_cards(tmp_path, alice):
    base_files = {"old.txt": "keep me\n", "logo.bin": "PNG\0one"}
    repo, ticket, pool, attempt = _conflicted(
        tmp_path, {"old.txt": "changed\n", "logo.bin": "PNG\\0two"}, {"old.txt": None, "logo.bin": "PNG\\0three"},
        base_files=base_files)
    files = {c.path: c for c in review.current_files(attempt)}
    assert files["old.txt"].kind == "modify/delete" and files["logo.bin"].kind == "binary"
    with pytest.raises(review.GateClosed):
        review_actions.request_approve(attempt.pk, alice)

    review.decide_file(files["old.txt"].pk, "delete", alice)
    review.decide_file(files["logo.bin"].pk, "theirs", alice)
    review_actions.request_approve(attempt.pk, alice)

    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(ticket.pk, pool, timeout=60) == "done"
    ticket.refresh_from_db()
    tree = repo.git.text("ls-tree", "--name-only", ticket.branch).split()
    assert "old.txt" not in tree
    theirs_text = files["logo.bin"].theirs_text
    assert theirs_text is None  # binary: never text
    blob = repo.git.run("show", f"{ticket.branch}:logo.bin").stdout
    assert blob == repo.git.run("cat-file", "blob", files["logo.bin"].theirs_oid).stdout


def test_retry_with_a_hint_asks_the_agent_again_and_records_the_hint(tmp_path, alice, settings, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    record = tmp_path / "calls.jsonl"
    both = _edit(BASE, {50: "B fifty\nC fifty"})
    settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake", {
        "record": str(record), "sequence": ["markers", "resolve"], "files": {"notes.txt": both},
        "text": "Kept both lines as the hint asked."}))
    _, ticket, pool, attempt = _conflicted(tmp_path, {"notes.txt": _edit(BASE, {50: "B fifty"})},
                                           {"notes.txt": _edit(BASE, {50: "C fifty"})})
    assert "markers left" in attempt.review_reason

    review_actions.request_retry(attempt.pk, "keep both lines, B first", alice)
    assert pool.wait_idle(timeout=60)  # the retry is a job: the page follows it live

    calls = recorded_calls(record)
    assert len(calls) == 2 and "keep both lines, B first" in calls[1]["prompt"]
    [conflict] = review.current_files(MergeAttempt.objects.get(pk=attempt.pk))
    assert conflict.proposed_by == "llm" and conflict.resolutions[0]["lines"] == ["B fifty", "C fifty"]
    action = ReviewAction.objects.get(attempt=attempt, action="retry_with_hint")
    assert action.detail["hint"] == "keep both lines, B first" and action.user == alice
    review_actions.request_approve(attempt.pk, alice)  # the proposal counts as decided: a person approves it
    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(ticket.pk, pool, timeout=60) == "done"


def test_dropping_a_source_merges_the_rest_and_runs_the_dropped_task_again(tmp_path, alice):
    repo, ticket, pool, attempt = _conflicted(tmp_path, {"notes.txt": _edit(BASE, {50: "B fifty"})},
                                              {"notes.txt": _edit(BASE, {50: "C fifty"})})
    dropped = attempt.pending_sources[0]

    review_actions.request_drop(attempt.pk, dropped, alice)

    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(ticket.pk, pool, timeout=60) == "done"
    attempt.refresh_from_db()
    assert attempt.status == "merged" and dropped not in attempt.merge_order
    task = ticket.tasks.get(key=dropped)
    assert task.synthesis_context["dropped_from_merge"] == attempt.pk
    assert task.attempts == 2  # ran again, on the merged head


def test_a_resolution_a_reviewer_approved_is_reused_when_the_same_conflict_returns(tmp_path, alice):
    b, c = _edit(BASE, {50: "B fifty"}), _edit(BASE, {50: "C fifty"})
    repo, ticket, pool, attempt = _conflicted(tmp_path, {"notes.txt": b}, {"notes.txt": c})
    [conflict] = review.current_files(attempt)
    review.decide_hunk(conflict.pk, 0, "edit", alice, text="B and C fifty")
    review_actions.request_approve(attempt.pk, alice)
    assert pool.wait_idle(timeout=60)  # the action is a queued job: until it ran, the ticket still waits
    assert drive(ticket.pk, pool, timeout=60) == "done"

    again = submit(repo, [{"key": "B", "command": sh(f"printf '{b}' > notes.txt")},
                          {"key": "C", "command": sh(f"printf '{c}' > notes.txt")},
                          {"key": "D", "depends_on": ["B", "C"], "command": "true"}])
    assert drive(again.pk, pool, timeout=60) == "done"
    second = MergeAttempt.objects.get(join__ticket=again)
    assert second.resolvers == {"notes.txt": "recorded"}
    assert "B and C fifty\n" in repo.show(again.branch, "notes.txt")


def test_when_the_ticket_moved_on_during_the_review_a_new_round_opens_instead_of_failing(tmp_path, alice):
    from coordination.models import Ticket
    from coordination.running import workspace

    b, c = _edit(BASE, {50: "B fifty"}), _edit(BASE, {50: "C fifty"})
    repo, ticket, pool, attempt = _conflicted(tmp_path, {"notes.txt": b}, {"notes.txt": c})
    [conflict] = review.current_files(attempt)
    review.decide_hunk(conflict.pk, 0, "edit", alice, text="B and C fifty")
    # Other work lands meanwhile and changes the very line the reviewer decided.
    clone = workspace.clone_git(ticket.repository_id)
    ticket.refresh_from_db()
    moved_text = _edit(BASE, {50: "moved"}).encode()
    tree = clone.tree_with(clone.tree_of(ticket.head_sha), {"notes.txt": ("100644", moved_text)})
    moved = clone.commit_tree(tree, [ticket.head_sha], "other work\n")
    clone.update_ref(ticket.ref, moved, ticket.head_sha)
    Ticket.objects.filter(pk=ticket.pk).update(head_sha=moved)

    review_actions.request_approve(attempt.pk, alice)
    assert pool.wait_idle(timeout=60)

    attempt.refresh_from_db()
    assert attempt.status == "conflicted" and attempt.round == 2, attempt.error
    assert "moved on during the review" in attempt.review_reason and attempt.base_sha == moved
    assert Ticket.objects.get(pk=ticket.pk).status == "awaiting_review"
    status = "awaiting_review"
    for _round in range(3):  # each source is merged onto the moved head again: one round per conflicting one
        attempt.refresh_from_db()
        for conflict in review.current_files(attempt):
            for index in range(conflict.hunk_count):
                review.decide_hunk(conflict.pk, index, "edit", alice, text="all three fifty")
        review_actions.request_approve(attempt.pk, alice)
        assert pool.wait_idle(timeout=60)
        status = drive(ticket.pk, pool, timeout=60)
        if status != "awaiting_review":
            break
    assert status == "done"
    assert "all three fifty" in repo.show(ticket.branch, "notes.txt")
