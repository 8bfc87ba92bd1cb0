"""Seed scenario 3 and the ladder's policy: conflicts settled by resolvers, the agent (the real SDK
against a fake Claude CLI), or left for a person, everything recorded."""

from __future__ import annotations

import sys

import pytest
from django.urls import reverse

from merges.engine.llm import NO_AGENT_SDK
from merges.models import MergeAttempt
from tests.fakes.fake_claude import install, recorded_calls
from tests.gitrepo import numbered_lines, replace_line
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = pytest.mark.django_db(transaction=True)

BASE = numbered_lines(60)
B_TEXT = replace_line(BASE, 50, "TIMEOUT = 5")
C_TEXT = replace_line(BASE, 50, "RETRIES = 3")
BOTH = replace_line(BASE, 50, "TIMEOUT = 5\nRETRIES = 3")


def _config_py(text: str) -> str:
    """numbered_lines are not Python; make the file Python so validation has something to check -- the lines
    of a function's body, where statements run in order, so the structured tier leaves the clash to the next
    tier as a line tier would."""
    body = "".join(f"    # {line}\n" if not line.isupper() and "=" not in line else f"    {line}\n"
                   for line in text.splitlines())
    return f"def settings():\n{body}    return locals()\n"


@pytest.fixture
def fake_agent(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")

    def configure(**scenario):
        record = tmp_path / "agent-calls.jsonl"
        settings.DAGMERGE_CLAUDE_CLI = str(install(tmp_path / "fake-claude", {"record": str(record), **scenario}))
        settings.DAGMERGE_LLM_TIMEOUT = 20
        return record

    return configure


def _line50_ticket(tmp_path, **ticket_fields):
    repo = source_repo(tmp_path, {"config.py": _config_py(BASE)})
    ticket = run_ticket(repo, [
        {"key": "B", "title": "Lower the timeout", "instructions": "Set TIMEOUT to 5 on line 50.",
         "command": sh(f"printf '{_config_py(B_TEXT)}' > config.py")},
        {"key": "C", "title": "Add retries", "instructions": "Configure 3 retries at line 50.",
         "command": sh(f"printf '{_config_py(C_TEXT)}' > config.py")},
        {"key": "D", "depends_on": ["B", "C"], "command": sh("grep -q TIMEOUT config.py && grep -q RETRIES config.py")},
    ], **ticket_fields)
    return repo, ticket


def test_the_agent_settles_what_the_resolvers_decline_and_the_continuation_starts_from_it(tmp_path, fake_agent):
    record = fake_agent(variant="resolve", files={"config.py": _config_py(BOTH)}, cost_usd=0.02,
                        text="Both changes are meant to land: kept the timeout and added the retries.")

    repo, ticket = _line50_ticket(tmp_path)

    assert ticket.status == "done", ticket.error
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert attempt.status == "merged" and attempt.llm_invocations == 1
    [conflict] = attempt.conflict_files.all()
    assert conflict.proposed_by == "llm" and conflict.validation == {"ok": True, "reason": ""}
    assert conflict.resolutions[0]["tier"] == "llm"
    assert "kept the timeout" in conflict.resolutions[0]["rationale"]
    assert repo.show(attempt.result_sha, "config.py") == _config_py(BOTH)
    assert ticket.tasks.get(key="D").start_sha == attempt.result_sha
    assert float(ticket.llm_cost_usd) == pytest.approx(0.02) and ticket.llm_invocations == 1
    [call] = recorded_calls(record)
    for words in ("Lower the timeout", "Set TIMEOUT to 5", "Add retries", "config.py"):
        assert words in call["prompt"]


def test_over_the_threshold_a_person_decides_and_the_agent_is_not_asked(tmp_path, fake_agent):
    record = fake_agent(variant="resolve", files={"config.py": _config_py(BOTH)})
    _, ticket = _line50_ticket(tmp_path, conflict_threshold=0)

    assert ticket.status == "awaiting_review"
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert "over the ticket's threshold of 0" in attempt.review_reason
    assert not record.exists()
    assert ticket.tasks.get(key="D").status == "pending"


@pytest.mark.parametrize(("scenario", "ticket_fields", "reason"), [
    ({"variant": "markers"}, {}, "markers left in config.py"),
    ({"variant": "resolve", "files": {"config.py": "TIMEOUT = = 5\n"}}, {}, "does not validate"),
    ({"variant": "resolve", "files": {"config.py": _config_py(BOTH)}}, {"llm_max_invocations": 0},
     "LLM budget exhausted"),
    ({"variant": "resolve", "files": {"config.py": _config_py(BOTH)}}, {"verify_command": "sh -c 'exit 7'"},
     "verify command exited with status 7"),
    ({"variant": "resolve", "files": {"config.py": _config_py(BOTH)}}, {"review_policy": "always"},
     "review policy is always"),
])
def test_what_no_tier_may_settle_waits_for_a_person(tmp_path, fake_agent, scenario, ticket_fields, reason):
    fake_agent(**scenario)
    repo, ticket = _line50_ticket(tmp_path, **ticket_fields)

    assert ticket.status == "awaiting_review"
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert attempt.status == "conflicted" and reason in attempt.review_reason
    assert repo.head(f"refs/heads/{ticket.branch}") == ticket.base_sha  # nothing unsettled was published


def test_without_an_api_key_the_conflict_goes_to_a_person_and_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    _, ticket = _line50_ticket(tmp_path)
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert ticket.status == "awaiting_review" and "no ANTHROPIC_API_KEY configured" in attempt.review_reason


def test_without_the_agents_extra_the_agent_tier_is_unavailable_and_a_person_decides(tmp_path, fake_agent,
                                                                                     monkeypatch):
    record = fake_agent(variant="resolve", files={"config.py": _config_py(BOTH)})
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # as if installed without [agents]

    _, ticket = _line50_ticket(tmp_path)

    assert ticket.status == "awaiting_review"
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert attempt.status == "conflicted" and attempt.review_reason == NO_AGENT_SDK
    assert not record.exists()


def test_review_policy_never_fails_the_ticket_instead_of_asking(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    _, ticket = _line50_ticket(tmp_path, review_policy="never")
    assert ticket.status == "failed" and "no ANTHROPIC_API_KEY" in ticket.error


def test_adjacent_edits_of_sibling_tasks_are_merged_line_by_line_without_the_agent(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    repo = source_repo(tmp_path, {"notes.txt": BASE})
    ticket = run_ticket(repo, [
        {"key": "B", "command": sh(f"printf '{replace_line(BASE, 50, 'fifty by B')}' > notes.txt")},
        {"key": "C", "command": sh(f"printf '{replace_line(BASE, 51, 'fifty-one by C')}' > notes.txt")},
        {"key": "D", "depends_on": ["B", "C"], "command": "true"},
    ])
    assert ticket.status == "done", ticket.error
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert attempt.resolvers == {"notes.txt": "line_merge"} and attempt.llm_invocations == 0
    merged = repo.show(ticket.branch, "notes.txt")
    assert "fifty by B\nfifty-one by C\n" in merged


SERVICE = "class Service:\n    def start(self):\n        return 1\n"
STOP = "\n    def stop(self):\n        return 0\n"
STATUS = "\n    def status(self):\n        return 2\n"


def _methods_ticket(tmp_path, **ticket_fields):
    """B and C each add a method to one class, at the same place: a line conflict, a structured merge."""
    repo = source_repo(tmp_path, {"service.py": SERVICE})
    ticket = run_ticket(repo, [
        {"key": "B", "command": sh(f"printf '{SERVICE + STOP}' > service.py")},
        {"key": "C", "command": sh(f"printf '{SERVICE + STATUS}' > service.py")},
        {"key": "D", "depends_on": ["B", "C"], "command": "true"},
    ], **ticket_fields)
    return repo, ticket


def test_methods_both_sibling_tasks_add_to_a_class_are_merged_by_syntax_without_the_agent(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)

    repo, ticket = _methods_ticket(tmp_path)

    assert ticket.status == "done", ticket.error
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert attempt.resolvers == {"service.py": "structured"} and attempt.llm_invocations == 0
    [conflict] = attempt.conflict_files.all()
    [hunk] = conflict.resolutions
    first, second = (STOP, STATUS) if attempt.merge_order[0] == "B" else (STATUS, STOP)
    assert (hunk["tier"], hunk["resolver"], hunk["parent"], hunk["order"]) == (
        "resolver", "structured", "class members", "finish order")
    assert hunk["rationale"] == "kept both: class members, finish order"
    assert repo.show(ticket.branch, "service.py") == SERVICE + first + second


def test_the_merge_and_review_pages_say_how_the_structured_tier_kept_both(tmp_path, monkeypatch, alice_client):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    _, ticket = _methods_ticket(tmp_path, review_policy="always")
    attempt = MergeAttempt.objects.get(join__ticket=ticket)
    assert ticket.status == "awaiting_review" and attempt.status == "conflicted"

    merge_page = alice_client.get(reverse("coordination:merge_attempt", args=[attempt.pk])).content.decode()
    review_page = alice_client.get(reverse("coordination:review", args=[attempt.pk])).content.decode()

    [conflict] = attempt.conflict_files.all()
    anchor = f'id="hunk-{conflict.pk}-0"'
    row = merge_page.split(anchor)[1].split("</tr>")[0]
    assert "resolver: structured" in row and "kept both: class members, finish order" in row
    hunk = review_page.split(anchor)[1].split("</article>")[0]
    assert "resolver: structured" in hunk and "kept both: class members, finish order" in hunk
