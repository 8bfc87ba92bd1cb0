"""Issue 5's executors and sandboxes inside a real ticket run: a Claude task (the real SDK against a fake
CLI) and a Daytona-backed task (the real SDK against a fake Daytona on 127.0.0.1)."""

from __future__ import annotations

import sys

import pytest

from coordination.models import Event
from tests.coordination.fake_daytona import FakeDaytona
from tests.fakes.fake_claude import install, recorded_calls
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.filterwarnings("ignore:Polling-only mode:DeprecationWarning")]


def test_a_claude_task_commits_what_the_agent_wrote_and_streams_its_messages(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    record = tmp_path / "calls.jsonl"
    settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake", {
        "variant": "write", "record": str(record), "files": {"login.py": "def login():\n    return True\n"},
        "text": "Added login().", "cost_usd": 0.05}))
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [
        {"key": "A", "command": sh('echo "{\\"api\\": \\"v2\\"}" > "$DAGMERGE_RESULT"')},
        {"key": "B", "depends_on": ["A"], "executor": "claude", "instructions": "Write a login function."},
    ])

    assert ticket.status == "done", ticket.error
    b = ticket.tasks.get(key="B")
    assert repo.show(b.head_sha, "login.py") == "def login():\n    return True\n"
    assert "Added login()." in b.log and "[Write]" in b.log
    assert Event.objects.filter(ticket=ticket, kind="task.log", payload__task="B").exists()
    assert float(ticket.llm_cost_usd) == pytest.approx(0.05)
    [call] = recorded_calls(record)
    assert "Write a login function." in call["prompt"] and '"api": "v2"' in call["prompt"]


def test_a_daytona_backed_ticket_runs_its_tasks_in_sandboxes_that_are_always_deleted(tmp_path, monkeypatch):
    fake = FakeDaytona(tmp_path / "daytona").start()
    try:
        monkeypatch.setenv("DAYTONA_API_KEY", fake.api_key)
        monkeypatch.setenv("DAYTONA_API_URL", fake.api_url)
        repo = source_repo(tmp_path)
        ticket = run_ticket(repo, [
            {"key": "A", "command": sh('echo remote > remote.txt; echo "{\\"where\\": 1}" > "$DAGMERGE_RESULT"')},
            {"key": "B", "depends_on": ["A"], "command": sh("test -f remote.txt && exit 5")},
        ], sandbox="daytona")
    finally:
        fake.stop()

    a, b = ticket.tasks.get(key="A"), ticket.tasks.get(key="B")
    assert a.status == "succeeded" and a.result["data"] == {"where": 1}
    assert repo.show(a.head_sha, "remote.txt") == "remote\n"
    assert b.status == "failed" and "status 5" in b.error  # saw A's work, then failed on purpose
    assert len(fake.sandboxes) == 2 and fake.live() == [] and fake.unhandled == []


@pytest.mark.parametrize(("module", "spec", "needs"), [
    ("claude_agent_sdk", {"executor": "claude", "instructions": "Write a login function."}, "the claude executor"),
    ("daytona", {"command": "true"}, "the daytona sandbox backend"),
], ids=["claude", "daytona"])
def test_without_the_agents_extra_the_task_fails_saying_what_to_install(tmp_path, monkeypatch, module, spec,
                                                                        needs):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("DAYTONA_API_KEY", "dtn-test")
    monkeypatch.setitem(sys.modules, module, None)  # as if installed without [agents]
    repo = source_repo(tmp_path)

    ticket = run_ticket(repo, [{"key": "A", **spec}], sandbox="daytona" if module == "daytona" else "local")

    a = ticket.tasks.get(key="A")
    assert ticket.status == "failed" and a.status == "failed"
    assert f"{needs} needs the agents extra: pip install 'dagmerge[agents]'" in a.error
