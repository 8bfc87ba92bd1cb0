"""Retry with a hint: the reviewer's note goes to the LLM resolver, which runs again; the hint is recorded."""

from __future__ import annotations

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Ticket
from coordination.running.leases import Lease
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.fakes import fake_claude
from tests.scenarios import sh, source_repo, submit

HINT = "Both timeouts matter: keep B's value and C's, B's first."
RESOLVED = change(SETTINGS, {10: "'b'"}).replace("V10 = 'b'\n", "V10 = 'b'\nV10 = 'c'\n")


class RetryWithHintTests(BrowserTestCase):
    llm_scenario = {"variant": "markers"}

    def test_retry_with_a_hint_runs_the_resolver_again_and_records_the_hint(self):
        record = self.fake_claude_dir / "calls.jsonl"
        # First call: the agent leaves the markers (so a person must look); after the hint, it resolves.
        fake_claude.install(self.fake_claude_dir, {
            "sequence": ["markers", "resolve"], "record": str(record), "files": {"settings.py": RESOLVED},
            "text": "Kept both values, B's first, as the reviewer asked.", "cost_usd": 0.02})
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "B", "title": "B's timeout", "command": writer("settings.py", change(SETTINGS, {10: "'b'"}), 0)},
            {"key": "C", "title": "C's timeout", "command": writer("settings.py", change(SETTINGS, {10: "'c'"}), 0.3)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("true")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        assert len(fake_claude.recorded_calls(record)) == 1
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        assert "the agent did not settle" in attempt.review_reason

        page = self.page
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        expect(page.locator("#remaining-overall")).to_contain_text("1 remaining")
        self.wait_live()
        page.evaluate("window.__loaded = true")
        page.locator(".more-actions summary").click()
        page.locator("textarea[name=hint]").fill(HINT)
        # The retry is queued; while another merge of the ticket holds its lock, the page says it waits.
        busy = Lease(Ticket, ticket.pk, 60, prefix="merge_lock")
        assert busy.take()
        page.get_by_role("button", name="Retry the LLM with this hint").click()
        summary = page.locator("#review-summary")
        expect(summary).to_contain_text("Asking the agent again…")
        expect(summary).to_contain_text(f"with the hint “{HINT}”")
        expect(page.locator("button[name=choice]")).to_have_count(0)
        busy.release()

        # The agent's new proposal arrives on the page by itself, ready to approve.
        conflict = ConflictFile.objects.get(attempt=attempt)
        hunk = page.locator(f"#hunk-{conflict.pk}-0")
        expect(hunk).to_contain_text("proposal: LLM", timeout=30_000)
        expect(hunk).to_contain_text("Kept both values, B's first")
        expect(hunk).to_have_attribute("data-decided", "1")
        expect(hunk.locator(".decided-by")).to_have_text("decided by LLM")
        expect(page.locator("#remaining-overall")).to_contain_text("0 remaining")
        expect(summary.locator(".notice.info")).to_contain_text("The agent answered the hint")
        expect(summary.locator(".notice.warning")).to_have_count(0)
        assert page.evaluate("window.__loaded"), "the review page was reloaded"
        calls = fake_claude.recorded_calls(record)
        assert len(calls) == 2 and HINT in calls[1]["prompt"]
        action = ReviewAction.objects.get(attempt=attempt, action="retry_with_hint")
        assert action.detail["hint"] == HINT and action.user.username == "alice"
        attempt.refresh_from_db()
        assert attempt.llm_invocations >= 1

        page.locator("#approve").click()
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        expect(summary).to_contain_text("Approved by alice")
        expect(hunk.locator(".decided-by")).to_have_text("decided by LLM")
        assert self.console_errors() == [], self.console
        ticket.refresh_from_db()
        assert "V10 = 'b'\nV10 = 'c'\n" in repo.show(ticket.branch, "settings.py")
