"""Provenance in the browser: the merge page and the review page agree on every hunk (its line, who settled
it, the choice, when) and link to each other; a resolution approved on one ticket and reused on another
says so, and leads back to the review that made it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from merges.models import ConflictFile, MergeAttempt
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.scenarios import sh, source_repo, submit


class ProvenanceTests(BrowserTestCase):
    def ticket(self, repo, lines: dict[int, tuple[str, str]]):
        """B and C set each of ``lines`` differently; D needs both."""
        return submit(repo, [
            {"key": "B", "title": "B's values", "command": writer("settings.py", change(
                SETTINGS, {n: b for n, (b, _) in lines.items()}), 0)},
            {"key": "C", "title": "C's values", "command": writer("settings.py", change(
                SETTINGS, {n: c for n, (_, c) in lines.items()}), 0.5)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("true")},
        ])

    def test_a_hunk_reads_the_same_on_both_pages_and_a_reused_resolution_leads_back_to_its_review(self):
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        page = self.page

        # Ticket 1: alice settles two hunks by hand and approves.
        first_ticket = self.ticket(repo, {10: ("'b'", "'c'"), 30: ("'b'", "'c'")})
        assert drive(first_ticket.pk, pool, timeout=60) == "awaiting_review"
        first = MergeAttempt.objects.get(ticket=first_ticket, status="conflicted")
        decided = ConflictFile.objects.get(attempt=first)
        page.goto(self.url(f"/reviews/{first.pk}/"))
        hunks = [page.locator(f"#hunk-{decided.pk}-{i}") for i in range(2)]
        hunks[0].locator('button[value="theirs"]').click()
        expect(hunks[0]).to_have_attribute("data-decided", "1")
        hunks[1].locator("summary", has_text="Edit").click()
        hunks[1].locator("textarea").fill("V30 = 'bc'")
        hunks[1].locator('button[value="edit"]').click()
        expect(hunks[1]).to_have_attribute("data-decided", "1")
        lines = [hunk.get_attribute("data-line") for hunk in hunks]
        assert lines == ["10", "30"]
        page.locator("#approve").click()
        expect(page.locator("#review-summary h2")).to_have_text("Merged", timeout=30_000)

        # Its merge page: the same lines, who decided, the exact choice, when; and the way back to the round.
        page.goto(self.url(f"/merges/{first.pk}/"))
        for index, (line, choice) in enumerate(zip(lines, ["theirs", "edited"], strict=True)):
            row = page.locator(f"#hunk-{decided.pk}-{index}")
            expect(row).to_contain_text(f"{index + 1} (line {line})")
            expect(row.locator(".decided-by")).to_have_text("person: alice")
            expect(row.locator(".choice")).to_have_text(choice)
            expect(row.locator("time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
        expect(page.locator("#round-1")).to_contain_text("approved by alice")
        page.locator("#round-1 a", has_text="Round 1").click()
        expect(page).to_have_url(re.compile(rf"/reviews/{first.pk}/#round-1$"))
        expect(page.locator("#round-1 .round-head")).to_contain_text("approved by alice")
        assert self.console_errors() == [], self.console

        # Ticket 2 meets the same clash on line 10, and a new one on line 50.
        second_ticket = self.ticket(repo, {10: ("'b'", "'c'"), 50: ("'b'", "'c'")})
        assert drive(second_ticket.pk, pool, timeout=60) == "awaiting_review"
        second = MergeAttempt.objects.get(ticket=second_ticket, status="conflicted")
        conflict = ConflictFile.objects.get(attempt=second)
        page.goto(self.url(f"/reviews/{second.pk}/"))
        reused = page.locator(f"#hunk-{conflict.pk}-0")
        expect(reused.locator(".decided-by")).to_have_text("decided by resolver: recorded")
        expect(reused.locator(".recorded-from")).to_contain_text(
            f"recorded resolution approved by alice in ticket #{first_ticket.pk}'s review of merge #{first.pk}")
        expect(reused.locator(".recorded-from")).to_contain_text("reused from another ticket")
        decided.refresh_from_db()
        expect(reused.locator(".hunk-result")).to_have_text("Result" + "\n".join(decided.resolutions[0]["lines"]))
        expect(page.locator(f"#hunk-{conflict.pk}-1")).to_have_attribute("data-decided", "0")
        expect(page.locator("#remaining-overall")).to_contain_text("1 remaining")

        # The merge page says the same, and the citation leads to the hunk of the review that made it.
        page.goto(self.url(f"/merges/{second.pk}/"))
        row = page.locator(f"#hunk-{conflict.pk}-0")
        expect(row.locator(".decided-by")).to_contain_text("resolver: recorded")
        expect(row.locator(".recorded-from")).to_contain_text("reused from another ticket")
        row.locator(".recorded-from a").click()
        expect(page).to_have_url(re.compile(rf"/reviews/{first.pk}/#hunk-{decided.pk}-0$"))
        origin = page.locator(f"#hunk-{decided.pk}-0")
        expect(origin).to_have_class(re.compile(r"\bcurrent\b"))
        expect(origin).to_be_in_viewport()
        expect(origin.locator(".decided-by")).to_have_text("decided by person: alice")
        expect(origin.locator(".hunk-head .choice")).to_have_text("theirs")
        assert self.console_errors() == [], self.console
