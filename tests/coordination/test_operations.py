from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from coordination.domain import dispatch
from coordination.models import Event, Task, Ticket
from coordination.scheduling import operations, rerun
from tests import factories

pytestmark = pytest.mark.django_db


def statuses(ticket: Ticket) -> dict[str, str]:
    return dict(ticket.tasks.values_list("key", "status"))


@pytest.fixture
def failed_diamond() -> Ticket:
    """A failed, so B (after A) is blocked, and D's join of B and C failed: D is blocked too."""
    ticket = factories.make_ticket("Failed diamond", status="failed", error="task(s) failed: A")
    a = factories.make_task(ticket, "A", status="failed", error="command exited with status 1")
    b = factories.make_task(ticket, "B", [a], status="blocked", error="an upstream task did not succeed")
    c = factories.make_task(ticket, "C", status="succeeded", landed=True)
    d = factories.make_task(ticket, "D", [b, c], status="blocked", error="its join failed")
    d.join.status = "failed"
    d.join.save()
    return ticket


def test_retry_preview_names_what_runs_and_merges_again(failed_diamond):
    a = failed_diamond.tasks.get(key="A")
    preview = operations.preview_retry(a.pk)
    assert preview.allowed
    assert [t.key for t in preview.reset] == ["B", "D"]
    assert [j.continuation.key for j in preview.rejoin] == ["D"]
    assert [t.key for t in preview.continuations] == ["D"]
    assert preview.ticket_reopens
    assert statuses(failed_diamond) == {"A": "failed", "B": "blocked", "C": "succeeded", "D": "blocked"}  # read only


def test_retrying_a_failed_task_puts_it_and_what_it_blocked_back_to_work(failed_diamond):
    recorder = dispatch.current()
    a = failed_diamond.tasks.get(key="A")
    operations.retry_task(a.pk, factories.alice())
    failed_diamond.refresh_from_db()
    assert statuses(failed_diamond) == {"A": "pending", "B": "pending", "C": "succeeded", "D": "pending"}
    assert failed_diamond.status == "running" and failed_diamond.error == ""
    assert failed_diamond.joins.get().status == "waiting"
    assert Task.objects.get(pk=a.pk).error == ""
    event = Event.objects.get(ticket=failed_diamond, kind="operation.retried")
    assert event.payload == {"task": "A", "task_id": a.pk, "by": "alice", "reset": ["B", "D"], "joins": ["D"]}
    assert Event.objects.filter(ticket=failed_diamond, kind="task.pending", payload__by="alice").count() == 3
    assert recorder.jobs == [("advance", failed_diamond.pk)]


def test_only_a_failed_task_can_be_retried(failed_diamond):
    c = failed_diamond.tasks.get(key="C")
    with pytest.raises(operations.OperationRefused, match="only a failed task can be retried"):
        operations.retry_task(c.pk, factories.alice())


def test_a_source_a_partial_join_merged_without_is_not_retried():
    ticket = factories.make_ticket("Partial")
    a = factories.make_task(ticket, "A", status="failed")
    c = factories.make_task(ticket, "C", status="succeeded", landed=True)
    d = factories.make_task(ticket, "D", [a, c], status="succeeded", landed=True)
    d.join.merge_strategy, d.join.status = "success_only", "merged"
    d.join.save()
    preview = operations.preview_retry(a.pk)
    assert [j.continuation.key for j in preview.stale] == ["D"]
    assert "already merged without A" in preview.problems[0]
    with pytest.raises(operations.OperationRefused):
        operations.retry_task(a.pk, factories.alice())
    assert Task.objects.get(pk=a.pk).status == "failed"


@pytest.fixture
def running_ticket() -> Ticket:
    ticket = factories.make_ticket("Running", status="running")
    a = factories.make_task(ticket, "A", status="succeeded", landed=True)
    b = factories.make_task(ticket, "B", [a], status="running", lease_owner="worker-1")
    c = factories.make_task(ticket, "C", [a])
    factories.make_task(ticket, "D", [b, c])
    return ticket


def test_cancelling_a_ticket_stops_every_unfinished_task_and_open_join(running_ticket):
    preview = operations.preview_cancel(running_ticket.pk)
    assert [t.key for t in preview.cancelled] == ["B", "C", "D"] and [t.key for t in preview.running] == ["B"]
    operations.cancel_ticket(running_ticket.pk, factories.alice())
    running_ticket.refresh_from_db()
    assert running_ticket.status == "cancelled" and running_ticket.finished_at
    assert statuses(running_ticket) == {"A": "succeeded", "B": "cancelled", "C": "cancelled", "D": "cancelled"}
    assert running_ticket.joins.get().status == "failed"
    assert Task.objects.get(key="B", ticket=running_ticket).lease_owner == ""
    assert Event.objects.get(ticket=running_ticket, kind="ticket.cancelled").payload["by"] == "alice"
    with pytest.raises(operations.OperationRefused, match="already cancelled"):
        operations.cancel_ticket(running_ticket.pk, factories.alice())


def test_cancelling_releases_claims_and_closes_a_join_whose_merger_was_lost(running_ticket):
    from coordination.models import Join, OwnershipClaim
    from merges.models import MergeAttempt

    b = Task.objects.get(ticket=running_ticket, key="B")
    OwnershipClaim.objects.create(task=b, pattern="src/**")
    join = Join.objects.get(ticket=running_ticket)  # D's, from B and C
    Join.objects.filter(pk=join.pk).update(status="merging")  # its merger died: no merge lease is held
    stuck = MergeAttempt.objects.create(ticket=running_ticket, join=join, target_ref="refs/heads/x", base_sha="0" * 40)

    operations.cancel_ticket(running_ticket.pk, factories.alice())

    assert not OwnershipClaim.objects.filter(task__ticket=running_ticket, released_at=None).exists()
    assert Join.objects.get(pk=join.pk).status == "failed"
    assert MergeAttempt.objects.get(pk=stuck.pk).status == "failed"


def test_cancelling_waits_for_a_running_merge_and_gives_up_with_a_reason(running_ticket, monkeypatch):
    monkeypatch.setattr(operations, "CANCEL_LEASE_WAIT_SECONDS", 0.2)
    Ticket.objects.filter(pk=running_ticket.pk).update(
        merge_lock_owner="merger", merge_lock_expires_at=timezone.now() + timedelta(minutes=5))
    with pytest.raises(operations.OperationRefused, match="a merge is running"):
        operations.cancel_ticket(running_ticket.pk, factories.alice())
    assert Ticket.objects.get(pk=running_ticket.pk).status == "running"


# The doors: who may, CSRF, htmx and plain forms.

def test_a_reviewer_previews_then_retries_from_the_task_page(alice_client, failed_diamond):
    task_url = reverse("coordination:task_detail", args=[failed_diamond.pk, "A"])
    retry_url = reverse("coordination:retry_task", args=[failed_diamond.pk, "A"])
    page = alice_client.get(task_url).content.decode()
    assert f'href="{retry_url}" hx-get="{retry_url}"' in page
    preview = alice_client.get(retry_url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in preview and "Run again" in preview and "<code>B</code>" in preview
    response = alice_client.post(retry_url)
    assert response.status_code == 302 and response["Location"] == task_url
    assert Task.objects.get(ticket=failed_diamond, key="A").status == "pending"
    again = alice_client.post(retry_url, headers={"HX-Request": "true"})
    assert again.status_code == 409 and "only a failed task can be retried" in again.content.decode()


def test_an_htmx_cancel_redirects_the_browser_to_the_ticket(alice_client, running_ticket):
    url = reverse("coordination:cancel_ticket", args=[running_ticket.pk])
    response = alice_client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("coordination:ticket_detail", args=[running_ticket.pk])


def test_a_viewer_sees_no_operation_buttons_and_is_refused_the_urls(bob_client, failed_diamond):
    retry_url = reverse("coordination:retry_task", args=[failed_diamond.pk, "A"])
    cancel_url = reverse("coordination:cancel_ticket", args=[failed_diamond.pk])
    assert retry_url not in bob_client.get(reverse("coordination:task_detail", args=[failed_diamond.pk, "A"])
                                           ).content.decode()
    assert cancel_url not in bob_client.get(reverse("coordination:ticket_detail", args=[failed_diamond.pk])
                                            ).content.decode()
    for url in (retry_url, cancel_url):
        assert bob_client.get(url).status_code == 403
        assert bob_client.post(url).status_code == 403
    assert Task.objects.get(ticket=failed_diamond, key="A").status == "failed"


def test_operations_need_the_csrf_token(failed_diamond):
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.alice())
    url = reverse("coordination:retry_task", args=[failed_diamond.pk, "A"])
    page = client.get(reverse("coordination:task_detail", args=[failed_diamond.pk, "A"]))
    assert client.post(url).status_code == 403
    token = page.cookies["csrftoken"].value
    assert 'hx-headers=\'{"X-CSRFToken": "' in page.content.decode()  # htmx sends it on every request
    assert client.post(url, headers={"X-CSRFToken": token}).status_code == 302


# Re-running what failed on a failed ticket: every failed task, each a retry of its own.

def test_rerunning_a_failed_ticket_retries_each_failed_task_and_what_they_blocked(failed_diamond):
    other = factories.make_task(failed_diamond, "E", status="failed", error="command exited with status 2")
    preview = rerun.preview_rerun(failed_diamond.pk)
    assert preview.allowed and [r.task.key for r in preview.retries] == ["A", "E"]
    assert statuses(failed_diamond)["A"] == "failed"  # a preview reads only
    assert rerun.rerun_failed_tasks(failed_diamond.pk, factories.alice()) == ["A", "E"]
    failed_diamond.refresh_from_db()
    assert failed_diamond.status == "running"
    assert statuses(failed_diamond) == {"A": "pending", "B": "pending", "C": "succeeded", "D": "pending",
                                        "E": "pending"}
    assert Event.objects.filter(ticket=failed_diamond, kind="operation.retried").count() == 2
    assert Task.objects.get(pk=other.pk).error == ""


def test_rerunning_is_refused_when_nothing_failed_or_the_ticket_did_not(failed_diamond):
    factories.make_task(failed_diamond, "E")
    failed_diamond.tasks.filter(status="failed").update(status="succeeded")
    with pytest.raises(operations.OperationRefused, match="no task of this ticket failed"):
        rerun.rerun_failed_tasks(failed_diamond.pk, factories.alice())
    running = factories.make_ticket("Running", repository=failed_diamond.repository, status="running")
    factories.make_task(running, "A", status="failed")
    assert rerun.preview_rerun(running.pk).problems == [f"ticket #{running.pk} is running, not failed"]


def test_the_rerun_door_previews_then_reruns_for_a_reviewer_only(alice_client, bob_client, client, failed_diamond):
    url = reverse("coordination:rerun_failed", args=[failed_diamond.pk])
    ticket_url = reverse("coordination:ticket_detail", args=[failed_diamond.pk])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    assert bob_client.get(url).status_code == 403 and bob_client.post(url).status_code == 403
    assert alice_client.put(url).status_code == 405
    assert alice_client.get(reverse("coordination:rerun_failed", args=[999])).status_code == 404
    preview = alice_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in preview and "runs again from the ticket head" in preview and "<code>B</code>" in preview
    response = alice_client.post(url, headers={"HX-Request": "true"})
    assert response.status_code == 200 and response["HX-Redirect"] == ticket_url
    assert statuses(failed_diamond)["A"] == "pending"
    again = alice_client.post(url)
    assert again.status_code == 409 and "is running, not failed" in again.content.decode()


def test_the_rerun_door_needs_the_csrf_token(failed_diamond):
    client = Client(enforce_csrf_checks=True)
    client.force_login(factories.alice())
    url = reverse("coordination:rerun_failed", args=[failed_diamond.pk])
    page = client.get(reverse("coordination:ticket_detail", args=[failed_diamond.pk]))
    assert client.post(url).status_code == 403
    assert client.post(url, headers={"X-CSRFToken": page.cookies["csrftoken"].value}).status_code == 302
