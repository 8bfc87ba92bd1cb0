"""The rough edges a new operator met, in Chromium: a 403 with a way out, the navigation on a phone, no
console errors on any page while a ticket moves, viewers without decision shortcuts, re-running what failed."""

from __future__ import annotations

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Task
from merges.models import MergeAttempt
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.scenarios import sh, source_repo, submit


class RoughEdgesTests(BrowserTestCase):
    def test_a_user_in_no_group_sees_why_which_group_to_ask_for_and_can_log_out(self):
        refused: list[str] = []
        self.page.on("response", lambda r: refused.append(r.request.resource_type) if r.status == 403 else None)
        self.log_in(factories.charlie())
        page = self.page
        response = page.goto(self.url("/"))
        assert response.status == 403
        expect(page.locator(".topbar")).to_contain_text("no access")
        expect(page.locator("main h1")).to_have_text("Not allowed")
        expect(page.locator("main")).to_contain_text("Reading the dashboard needs the group viewers (or reviewers)")
        page.get_by_role("button", name="Log out and sign in as someone else").click()
        expect(page).to_have_url(self.url("/accounts/login/"))
        # Chromium logs a page answered with 403 as a failed load; that is the page saying no, as it should.
        # Nothing else failed: no socket was opened, no script or fragment went wrong.
        assert refused and set(refused) == {"document"}
        said_no = "error: Failed to load resource: the server responded with a status of 403 (Forbidden)"
        assert [e for e in self.console_errors() if not e.startswith(said_no)] == []

    def test_the_navigation_fits_a_phone_and_works_there(self):
        self.context.close()
        self.context = self.browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True,
                                                has_touch=True)
        self.page = self.context.new_page()
        self.log_in(factories.alice())
        factories.make_ticket("A ticket with a rather long title, as tickets have")
        page = self.page
        page.goto(self.url("/"))
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        for name in ("Tickets", "Reviews", "Admin", "Log out alice"):
            box = page.locator(".topbar").get_by_text(name, exact=True).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] >= 20, (name, box)
        self.screenshot("phone-navigation")
        page.locator(".topbar").get_by_text("Reviews", exact=True).tap()
        expect(page).to_have_url(self.url("/reviews/"))

    def test_no_page_logs_an_error_while_a_ticket_moves_and_every_page_has_its_icon(self):
        alice = factories.alice()
        self.log_in(alice)
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "B", "title": "B", "command": writer("settings.py", change(SETTINGS, {2: "'b'"}), 0.2)},
            {"key": "C", "title": "C", "command": writer("settings.py", change(SETTINGS, {2: "'c'"}), 0.5)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("true")},
            {"key": "slow", "title": "Slow and independent", "command": sh("sleep 5; echo done > slow.txt")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"  # slow still runs: events keep coming
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        page = self.page
        pages = ["/", f"/tickets/{ticket.pk}/", f"/tickets/{ticket.pk}/tasks/slow/", f"/reviews/{attempt.pk}/",
                 "/reviews/", f"/merges/{attempt.pk}/", f"/tickets/{ticket.pk}/cancel/"]
        for path in pages:
            page.goto(self.url(path))
            expect(page.locator('link[rel="icon"]')).to_have_attribute("href", "/static/favicon.svg")
            page.wait_for_timeout(300)
        # The review page stays open while the slow task finishes: its events used to log
        # htmx:oobErrorNoTarget for #dag, #task-table and #merge-chart.
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        self.wait_live()
        slow = Task.objects.get(ticket=ticket, key="slow")
        expect(page.locator("#ticket-header .progress-text")).to_contain_text("3/4 tasks succeeded", timeout=20_000)
        assert Task.objects.get(pk=slow.pk).status == "succeeded"
        assert page.request.get(self.url("/static/favicon.svg")).status == 200
        assert self.console_errors() == [], self.console_errors()

    def test_a_viewer_reads_a_review_without_decision_shortcuts(self):
        self.log_in(factories.bob())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "B", "command": writer("settings.py", change(SETTINGS, {4: "'b'"}), 0)},
            {"key": "C", "command": writer("settings.py", change(SETTINGS, {4: "'c'"}), 0.3)},
            {"key": "D", "depends_on": ["B", "C"], "command": sh("true")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        page = self.page
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        keys = page.locator("details.keys")
        keys.locator("summary").click()
        expect(keys).to_contain_text("next / previous unresolved hunk")
        expect(keys).not_to_contain_text("take ours")
        expect(keys).not_to_contain_text("approve")
        page.keyboard.press("n")
        page.keyboard.press("o")  # nothing to press: no request goes out, nothing changes
        expect(page.locator("#remaining-overall")).to_contain_text("1 remaining")
        assert self.console_errors() == []

    def test_a_failed_ticket_is_rerun_from_its_page(self):
        """A needs a file that B, running beside it, brings: A fails first; once B has landed, the ticket
        failed, re-running A (from the ticket head, which now has the file) brings it to done."""
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos")
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "A", "title": "Needs the fix", "command": sh("test -f fix.txt && echo ok > a.txt")},
            {"key": "B", "title": "Brings the fix", "command": sh("sleep 1; echo fix > fix.txt")},
            {"key": "C", "title": "After A", "depends_on": ["A"], "command": sh("test -f a.txt")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "failed"
        page = self.page
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()
        page.get_by_role("link", name="Re-run 1 failed task…").click()
        preview = page.locator("#rerun-preview")
        expect(preview).to_contain_text("runs again from the ticket head")
        expect(preview).to_contain_text("C, blocked by it, run too")
        preview.get_by_role("button", name="Re-run the failed tasks").click()
        expect(page.locator(".messages")).to_contain_text("Re-running 1 failed task: A.")
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        expect(page.locator("#ticket-header .progress-text")).to_contain_text("3/3 tasks succeeded")
        assert self.console_errors() == []
