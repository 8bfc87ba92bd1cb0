from __future__ import annotations

import json
import shlex
import sys

import pytest

from coordination.domain import dispatch
from coordination.domain.tokens import ticket_token
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.models import Join, Task, Ticket
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
    assert _call(client, other.pk, ticket_token(mine.pk), {"key": "X", "command": "true"}).status_code == 403
    unknown = _call(client, mine.pk, ticket_token(mine.pk), {"key": "X", "command": "true", "depends_on": ["Q"]})
    assert unknown.status_code == 400 and unknown.json()["error"] == "task X depends on unknown task 'Q'"
    duplicate = _call(client, mine.pk, ticket_token(mine.pk), {"key": "A", "command": "true"})
    assert duplicate.status_code == 400 and "duplicate task key 'A'" in duplicate.json()["error"]
    assert _call(client, mine.pk, ticket_token(mine.pk), {"key": "X"}).status_code == 400
    assert Task.objects.count() == before

    listing = _call(client, mine.pk, ticket_token(mine.pk))
    assert listing.status_code == 200 and [t["key"] for t in listing.json()["tasks"]] == ["A"]
    added = _call(client, mine.pk, ticket_token(mine.pk), {"key": "X", "depends_on": ["A"], "command": "true"})
    assert added.status_code == 201 and Task.objects.filter(ticket=mine, key="X").exists()

    Ticket.objects.filter(pk=mine.pk).update(status="done")
    closed = _call(client, mine.pk, ticket_token(mine.pk), {"key": "Y", "command": "true"})
    assert closed.status_code == 409 and "takes no new tasks" in closed.json()["error"]


def test_task_commands_get_the_api_address_and_their_tickets_token(tmp_path, settings):
    settings.DAGMERGE_API_URL = "http://dagmerge.test:8000"
    from tests.scenarios import run_ticket

    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh('echo "$DAGMERGE_API_URL $DAGMERGE_TOKEN" > api.txt')}])
    seen = repo.show(ticket.head_sha, "api.txt").split()
    assert seen == [f"http://dagmerge.test:8000/api/tickets/{ticket.pk}", ticket_token(ticket.pk)]
