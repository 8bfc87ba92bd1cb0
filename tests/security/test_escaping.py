"""``<script>`` canaries in everything a task, a spec, an agent or a person can write — titles, commands,
instructions, output, results, errors, file paths and contents, rationales, event payloads — come out
escaped on every page, fragment, live message and admin page that shows them.

Two sources: rows written directly with the canary in every field (``build_world``), and a real ticket
whose tasks print it, write it into files that conflict, and name it in their result.
"""

from __future__ import annotations

import pytest

from coordination.models import Event
from merges.models import ConflictFile, MergeAttempt
from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import run_ticket, sh, source_repo
from tests.security.world import World, build_world, dashboard_pages

CANARY = "xss-canary-4f1d"
MARK = f'"><script>alert("{CANARY}")</script><img src=x onerror=alert(1)>'
RAW = ("<script>alert(", "<img src=x", "onerror=alert(1)>")


def assert_escaped_everywhere(client, world: World) -> None:
    shown = 0
    for url in dashboard_pages(world):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not [raw for raw in RAW if raw in html], url
        shown += CANARY in html
    assert shown >= len(dashboard_pages(world)) - 3, shown  # the canary was there to escape on (nearly) every page


@pytest.mark.django_db
def test_canaries_in_every_field_are_escaped_on_every_page(alice_client):
    world = build_world(MARK)
    Event.record(world.ticket, "review.requested", {"attempt_id": world.attempt.pk, "action": "retry", "by": "alice",
                                                    "hint": MARK})
    assert_escaped_everywhere(alice_client, world)


@pytest.mark.django_db(transaction=True)
def test_canaries_a_real_ticket_writes_are_escaped_on_every_page(tmp_path, alice_client):
    text = numbered_lines(30)
    repo = source_repo(tmp_path, {"notes.txt": text})
    quoted = MARK.replace("'", "'\"'\"'")
    ticket = run_ticket(repo, [
        {"key": "A", "title": f"Set up {MARK}",
         "command": sh(f"echo '{quoted}'; echo x > '<script>alert(1){CANARY}.txt'")},
        {"key": "B", "title": f"B {MARK}", "command": sh(
            f"printf '%s' '{replace_line(text, 10, MARK)}' > notes.txt; "
            f"printf '{{\"say\": \"%s\"}}' 'x{CANARY}' > \"$DAGMERGE_RESULT\"")},
        {"key": "C", "title": f"C {MARK}", "command": sh(f"printf '%s' '{replace_line(text, 10, 'C ' + MARK)}' "
                                                         "> notes.txt")},
        {"key": "D", "depends_on": ["B", "C"], "instructions": MARK, "command": "true"},
    ], title=f"Ticket {MARK}")
    assert ticket.status == "awaiting_review", ticket.error
    attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
    text_file = ConflictFile.objects.get(attempt=attempt)
    assert CANARY in text_file.merged_text
    world = World(ticket, ticket.tasks.get(key="A"), attempt, text_file)
    assert CANARY in world.task.log
    assert_escaped_everywhere(alice_client, world)
