"""Rollback is a state of the ticket: what it undoes is previewed, said everywhere, never re-landed by the
sweep, and a person then resumes the ticket (the rolled-back work runs again) or closes it."""

from __future__ import annotations

import pytest

from coordination.domain import dispatch
from coordination.jobs import sweeping
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.models import Ticket
from coordination.running import workspace
from coordination.scheduling import rollback
from coordination.web.reports import ticket_report
from merges.models import MergeAttempt, RecordedResolution
from tests import factories
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)


def _done_chain(tmp_path):
    pool = ThreadDispatcher(2)
    dispatch.use(pool)
    repo = source_repo(tmp_path)
    ticket = submit(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                           {"key": "B", "depends_on": ["A"], "command": sh("echo b > b.txt")}])
    assert drive(ticket.pk, pool, timeout=60) == "done"
    return repo, ticket, pool


def test_rolling_back_says_so_on_the_ticket_its_tasks_and_the_report_and_the_sweep_leaves_it(tmp_path):
    repo, ticket, pool = _done_chain(tmp_path)
    last = MergeAttempt.objects.filter(ticket=ticket).order_by("-pk").first()
    preview = rollback.preview_rollback(last.pk)
    assert preview.allowed and [t.key for t in preview.undone] == ["B"]

    rollback.rollback_attempt(last.pk)

    ticket.refresh_from_db()
    assert ticket.status == "rolled_back" and ticket.head_sha == last.base_sha
    assert ticket.tasks.get(key="B").status == "rolled_back" and not ticket.tasks.get(key="B").landed
    assert ticket.tasks.get(key="A").status == "succeeded"
    report = ticket_report(ticket)
    assert report["status"] == "rolled_back"
    recorder = RecordingDispatcher()
    dispatch.use(recorder)
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=ticket.updated_at.replace(year=2000))
    sweeping.sweep()
    assert not [job for job in recorder.jobs if job[0] in ("land_task", "run_task", "advance")]
    assert repo.head(f"refs/heads/{ticket.branch}") == last.base_sha  # the source was told


def test_a_resumed_ticket_runs_its_rolled_back_tasks_again_and_a_cancelled_one_closes(tmp_path):
    repo, ticket, pool = _done_chain(tmp_path)
    last = MergeAttempt.objects.filter(ticket=ticket).order_by("-pk").first()
    rollback.rollback_attempt(last.pk)

    rollback.resume_ticket(ticket.pk)
    assert drive(ticket.pk, pool, timeout=60) == "done"
    b = ticket.tasks.get(key="B")
    assert b.status == "succeeded" and b.landed and b.attempts == 2
    assert "b.txt" in workspace.clone_git(ticket.repository_id).text("ls-tree", "--name-only", ticket.ref)


def test_a_rollback_withdraws_the_resolutions_approved_in_that_merge(tmp_path):
    repo, ticket, pool = _done_chain(tmp_path)
    last = MergeAttempt.objects.filter(ticket=ticket).order_by("-pk").first()
    RecordedResolution.objects.create(repository_id=ticket.repository_id, conflict_key="k" * 64,
                                      resolution=["x"], attempt=last)
    assert rollback.preview_rollback(last.pk).withdrawn == 1
    rollback.rollback_attempt(last.pk)
    assert not RecordedResolution.objects.filter(attempt=last).exists()


def test_the_merge_page_offers_reviewers_the_rollback_with_a_preview_and_viewers_nothing(tmp_path, client):
    repo, ticket, pool = _done_chain(tmp_path)
    last = MergeAttempt.objects.filter(ticket=ticket).order_by("-pk").first()
    client.force_login(factories.bob())
    assert "Roll back" not in client.get(f"/merges/{last.pk}/").content.decode()
    assert client.post(f"/merges/{last.pk}/rollback/").status_code == 403
    client.force_login(factories.alice())
    assert "Roll back" in client.get(f"/merges/{last.pk}/").content.decode()
    preview = client.get(f"/merges/{last.pk}/rollback/").content.decode()
    assert "<code>B</code>" in preview and "rolled back" in preview
    first = MergeAttempt.objects.filter(ticket=ticket).order_by("pk").first()
    refused = client.post(f"/merges/{first.pk}/rollback/")
    assert refused.status_code == 409 and "roll back the later merges first" in refused.content.decode()
    assert client.post(f"/merges/{last.pk}/rollback/").status_code == 302
    assert Ticket.objects.get(pk=ticket.pk).status == "rolled_back"
    assert "Resume the ticket" in client.get(f"/tickets/{ticket.pk}/").content.decode()
    client.post(f"/tickets/{ticket.pk}/resume/")
    assert Ticket.objects.get(pk=ticket.pk).status == "running"
