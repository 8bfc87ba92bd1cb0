from __future__ import annotations

import json
import shlex
import sys

import pytest

from coordination.domain import dispatch
from coordination.domain.tokens import ticket_token
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.models import Event, Join, Task, Ticket
from coordination.scheduling.ticket_access import revoke_ticket_token
from coordination.scheduling.tickets import TicketClosed, add_discovered_task
from coordination.web.api import MAX_BODY_BYTES
from tests import factories
from tests.scenarios import RecordingDispatcher, sh, source_repo, submit

pytestmark = pytest.mark.django_db(transaction=True)

ADD_TASKS = """
import json, os, urllib.request
def post(task):
    request = urllib.request.Request(os.environ["DAGMERGE_API_URL"] + "/tasks", data=json.dumps(task).encode(),
                                     headers={"Authorization": "Bearer " + os.environ["DAGMERGE_TOKEN"]})
    print(urllib.request.urlopen(request).read().decode())
report = "sh -c 'echo {0} > {0}.txt; echo {{\\\\\\"{0}\\\\\\": {1}}} > $DAGMERGE_RESULT'"
post({"key": "B", "depends_on": ["A"], "command": report.format("b", 1)})
post({"key": "C", "depends_on": ["A"], "command": report.format("c", 2)})
post({"key": "D", "depends_on": ["B", "C"], "command": "sh -c 'test -f b.txt && test -f c.txt'"})
"""


def test_a_running_task_adds_parallel_work_and_a_join_through_the_api(tmp_path, live_server, settings):
    settings.DAGMERGE_API_URL = live_server.url
    pool = ThreadDispatcher(3)
    dispatch.use(pool)
    repo = source_repo(tmp_path, {"add_tasks.py": ADD_TASKS})  # the task's own code, in its checkout
    # The API is reached over the network, which a confined task has only when its spec asks for it.
    ticket = submit(repo, [{"key": "A", "network": True, "command": shlex.join([sys.executable, "add_tasks.py"])}])

    assert drive(ticket.pk, pool, timeout=60) == "done", ticket.tasks.get(key="A").log
    join = Join.objects.get(ticket=ticket)
    assert join.continuation.key == "D" and sorted(s.key for s in join.sources.all()) == ["B", "C"]
    d = Task.objects.get(ticket=ticket, key="D")
    assert d.synthesis_context["merged"] == {"b": 1, "c": 2}


def token_of(ticket: Ticket) -> str:
    ticket.refresh_from_db(fields=["token_nonce"])
    return ticket_token(ticket.pk, ticket.token_nonce)


def _call(client, ticket_id, token, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is None:
        return client.get(f"/api/tickets/{ticket_id}/tasks", **headers)
    return client.post(f"/api/tickets/{ticket_id}/tasks", data=json.dumps(body), content_type="application/json",
                       **headers)


def test_the_api_refuses_bad_tokens_other_tickets_and_bad_tasks_writing_nothing(tmp_path, client):
    dispatch.use(RecordingDispatcher())
    repo = source_repo(tmp_path)
    mine = submit(repo, [{"key": "A", "command": "true"}])
    other = submit(repo, [{"key": "A", "command": "true"}])
    before = Task.objects.count()

    assert _call(client, mine.pk, None).status_code == 401
    assert _call(client, other.pk, token_of(mine), {"key": "X", "command": "true"}).status_code == 403
    unknown = _call(client, mine.pk, token_of(mine), {"key": "X", "command": "true", "depends_on": ["Q"]})
    assert unknown.status_code == 400 and unknown.json()["error"] == "task X depends on unknown task 'Q'"
    duplicate = _call(client, mine.pk, token_of(mine), {"key": "A", "command": "true"})
    assert duplicate.status_code == 400 and "duplicate task key 'A'" in duplicate.json()["error"]
    assert _call(client, mine.pk, token_of(mine), {"key": "X"}).status_code == 400
    assert Task.objects.count() == before

    listing = _call(client, mine.pk, token_of(mine))
    assert listing.status_code == 200 and [t["key"] for t in listing.json()["tasks"]] == ["A"]
    added = _call(client, mine.pk, token_of(mine), {"key": "X", "depends_on": ["A"], "command": "true"})
    assert added.status_code == 201 and Task.objects.filter(ticket=mine, key="X").exists()

    Ticket.objects.filter(pk=mine.pk).update(status="done")
    closed = _call(client, mine.pk, token_of(mine), {"key": "Y", "command": "true"})
    assert closed.status_code == 403 and closed.json()["error"] == f"ticket {mine.pk} is done: its token has expired"
    # A ticket that ends between the token check and the insert: refused under the ticket's lock.
    with pytest.raises(TicketClosed, match="takes no new tasks"):
        add_discovered_task(mine.pk, {"key": "Y", "command": "true"})
    assert not Task.objects.filter(ticket=mine, key="Y").exists()


def test_task_commands_get_the_api_address_and_their_tickets_token(tmp_path, settings):
    settings.DAGMERGE_API_URL = "http://dagmerge.test:8000"
    from tests.scenarios import run_ticket

    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh('echo "$DAGMERGE_API_URL $DAGMERGE_TOKEN" > api.txt')}])
    seen = repo.show(ticket.head_sha, "api.txt").split()
    assert seen == [f"http://dagmerge.test:8000/api/tickets/{ticket.pk}", token_of(ticket)]


def _post_raw(client, ticket_id, token, body: bytes):
    return client.post(f"/api/tickets/{ticket_id}/tasks", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def two_tickets():
    repository = factories.make_repository()
    mine = factories.make_ticket("mine", repository=repository, status="running")
    other = factories.make_ticket("other", repository=repository, status="running")
    factories.make_task(mine, "A")
    return mine, other


@pytest.mark.parametrize("case", ["none", "not bearer", "empty bearer", "wrong", "another ticket's", "unknown ticket"])
def test_the_token_opens_its_own_ticket_only(client, two_tickets, case):
    mine, other = two_tickets
    target, header = {
        "none": (mine.pk, None),
        "not bearer": (mine.pk, f"Basic {token_of(mine)}"),
        "empty bearer": (mine.pk, "Bearer  "),
        "wrong": (mine.pk, "Bearer " + "0" * 64),
        "another ticket's": (mine.pk, f"Bearer {token_of(other)}"),
        "unknown ticket": (other.pk + 1, f"Bearer {token_of(other)}"),
    }[case]
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    body = json.dumps({"key": "X", "command": "true"})

    listed = client.get(f"/api/tickets/{target}/tasks", **headers)
    posted = client.post(f"/api/tickets/{target}/tasks", data=body, content_type="application/json", **headers)

    expected = 401 if case in ("none", "not bearer", "empty bearer") else 403
    assert listed.status_code == posted.status_code == expected
    assert "\n" not in posted.json()["error"]
    assert "tasks" not in listed.json()  # nothing of the ticket shown
    assert not Task.objects.filter(key="X").exists()


def test_the_token_expires_when_the_ticket_ends(client, two_tickets):
    mine, _ = two_tickets
    token = token_of(mine)
    assert _call(client, mine.pk, token).status_code == 200
    for not_ended in ("failed", "rolled_back"):  # not the end: a retry or a resume puts it back to work
        Ticket.objects.filter(pk=mine.pk).update(status=not_ended)
        assert _call(client, mine.pk, token).status_code == 200
    for final in ("done", "cancelled"):
        Ticket.objects.filter(pk=mine.pk).update(status=final)
        listed = _call(client, mine.pk, token)
        posted = _call(client, mine.pk, token, {"key": "X", "command": "true"})
        assert listed.status_code == posted.status_code == 403
        assert posted.json()["error"] == f"ticket {mine.pk} is {final}: its token has expired"
    assert not Task.objects.filter(key="X").exists()


def test_a_revoked_token_is_refused_and_the_new_one_works_and_the_revocation_is_an_event(client, two_tickets):
    mine, other = two_tickets
    old, others = token_of(mine), token_of(other)

    revoke_ticket_token(mine.pk, factories.alice())

    assert _call(client, mine.pk, old).status_code == 403
    assert _call(client, mine.pk, old, {"key": "X", "command": "true"}).status_code == 403
    new = token_of(mine)
    assert new != old and _call(client, mine.pk, new).status_code == 200
    assert _call(client, other.pk, others).status_code == 200  # other tickets keep theirs
    assert Event.objects.filter(ticket=mine, kind="ticket.token_revoked", payload={"by": "alice"}).count() == 1
    assert not Task.objects.filter(key="X").exists()


@pytest.mark.parametrize("body, message", [
    (b"{not json", "body is not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (b"", "task must be a mapping"),
    (b"\xff\xfe{}", "body is not JSON: "),
    (b"[" * 100_000 + b"]" * 100_000, "body is not JSON: "),
    (b'["a list"]', "task must be a mapping"),
    (b'{"key": "X", "command": "true", "depends_on": ["X"]}', "task X depends on itself"),
    (b'{"key": "A", "command": "true"}', "duplicate task key 'A'"),
])
def test_bad_bodies_get_400_with_one_line_and_write_nothing(client, two_tickets, body, message):
    mine, _ = two_tickets
    before = Task.objects.count(), Event.objects.count()

    response = _post_raw(client, mine.pk, token_of(mine), body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error
    assert (Task.objects.count(), Event.objects.count()) == before


def test_a_body_over_the_limit_gets_413_and_one_at_the_limit_is_read(client, two_tickets):
    mine, _ = two_tickets
    task = json.dumps({"key": "X", "command": "true"}).encode()

    over = _post_raw(client, mine.pk, token_of(mine), task + b" " * (MAX_BODY_BYTES + 1 - len(task)))
    assert over.status_code == 413 and over.json()["error"] == f"body larger than {MAX_BODY_BYTES} bytes"
    assert not Task.objects.filter(key="X").exists()

    at_limit = _post_raw(client, mine.pk, token_of(mine), task + b" " * (MAX_BODY_BYTES - len(task)))
    assert at_limit.status_code == 201 and Task.objects.filter(ticket=mine, key="X").exists()
