"""The worker's secrets (canaries in its environment) never reach a page, a log, an event, a row, a task's
environment or /proc, nor the agent resolver beyond its own API key — end to end, through a ticket whose
tasks go looking for them and whose conflict the agent (a fake Claude CLI, driven by the real SDK) fails to
settle, so a person sees everything there is to see on the review page.

``test_task_reach`` runs the same search from a worker process started with the canaries (``dagmerge run``),
where /proc/<worker>/environ holds them from the start; here the worker is this process.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.management import call_command

from coordination.models import Event
from merges.models import MergeAttempt
from tests.fakes.fake_claude import install, recorded_calls
from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import run_ticket, sh, source_repo
from tests.security.world import World, dashboard_pages

pytestmark = pytest.mark.django_db(transaction=True)

LOOK = ("env > env.txt; for f in /proc/$PPID/environ /proc/self/environ /proc/1/environ; do tr '\\0' '\\n' < $f; "
        "done > proc.txt; cat proc.txt env.txt; cat ~/.netrc ~/.ssh/id_rsa ~/.git-credentials 2>&1 | head -3")


def leaked(text: str, canaries: dict[str, str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [name for name, value in canaries.items() if value in text and name not in allowed]


def test_canaries_reach_no_page_log_event_row_task_or_agent(tmp_path, settings, canaries, caplog, alice_client):
    caplog.set_level(logging.DEBUG)
    record = tmp_path / "agent-calls.jsonl"
    settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake-claude", {
        "record": str(record), "variant": "resolve", "files": {"config.py": "def broken(:\n"},
        "text": "Kept both sides; see the file."}))  # does not compile: validation sends it to a person
    settings.DAGMERGE_LLM_TIMEOUT = 30
    # A function's body: statements run in order, so no resolver reorders the clash and the agent is asked.
    body = "".join(f"    # {line}\n" for line in numbered_lines(30).splitlines())
    text = f"def settings():\n{body}    return 1\n"
    repo = source_repo(tmp_path, {"config.py": text})
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh(LOOK)},
        *({"key": key, "depends_on": ["A"], "command": sh(f"printf '%s' '{replace_line(text, 10, f'    {key} = 1')}' "
                                                           "> config.py")} for key in "BC"),
        {"key": "D", "depends_on": ["B", "C"], "command": sh(LOOK)},
    ])
    assert ticket.status == "awaiting_review", ticket.error
    attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
    assert attempt.llm_invocations == 1 and "does not" in attempt.review_reason

    a = ticket.tasks.get(key="A")
    seen = repo.show(a.head_sha, "env.txt") + repo.show(a.head_sha, "proc.txt") + a.log
    assert "DAGMERGE_TASK=A" in seen and leaked(seen, canaries) == []
    [call] = recorded_calls(record)
    assert leaked(json.dumps(call["env"]), canaries, allowed=("ANTHROPIC_API_KEY",)) == []  # its own key only
    assert call["env"]["ANTHROPIC_API_KEY"] == canaries["ANTHROPIC_API_KEY"]

    world = World(ticket, a, attempt, attempt.conflict_files.get())
    for url in dashboard_pages(world):
        response = alice_client.get(url)
        assert response.status_code == 200 and leaked(response.content.decode(), canaries) == [], url
    events = json.dumps([e.payload for e in Event.objects.all()])
    assert leaked(events, canaries) == []
    rows = io.StringIO()
    call_command("dumpdata", stdout=rows)
    assert leaked(rows.getvalue(), canaries) == []
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert logged and leaked(logged, canaries) == []
