"""A live "needs you": the ticket list, the Reviews inbox, the navigation's count and the tab's title move
by themselves when a merge starts waiting for a person, and the ticket itself says why and where to go."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from merges.models import MergeAttempt
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.scenarios import sh, source_repo, submit

# Stands in for the browser's notifications: records what the page asks to show.
NOTIFICATIONS = """
window.__notified = [];
window.Notification = function (title, options) { window.__notified.push(title + ": " + (options || {}).body); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


class NeedsYouTests(BrowserTestCase):
    def disagreeing(self, repo, title: str):
        """B and C set the same line differently: the join of D waits for a person."""
        return submit(repo, [
            {"key": "B", "title": "B's value", "command": writer("settings.py", change(SETTINGS, {5: "'b'"}), 0.5)},
            {"key": "C", "title": "C's value", "command": writer("settings.py", change(SETTINGS, {5: "'c'"}), 0.8)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("true")},
        ], title=title)

    def test_the_list_the_inbox_the_count_and_the_title_follow_a_merge_that_needs_a_person(self):
        self.context.add_init_script(NOTIFICATIONS)
        self.log_in(factories.bob())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        page = self.page
        page.goto(self.url("/"))
        self.wait_live()
        page.evaluate("window.__loaded = true")
        expect(page.locator("#ticket-table")).to_contain_text("No tickets yet")
        page.locator("#notify").click()  # opting in to notifications
        expect(page.locator("#notify")).to_have_text("Notifying")

        first = self.disagreeing(repo, "First disagreement")
        row = page.locator(f"#ticket-row-{first.pk}")
        expect(row).to_contain_text("First disagreement", timeout=10_000)  # a new ticket appears by itself
        assert drive(first.pk, pool, timeout=60) == "awaiting_review"
        expect(row.locator(".badge")).to_have_text("awaiting review")
        expect(row).to_contain_text("needs you")
        expect(page.locator("#nav-reviews .count")).to_have_text("1")
        expect(page).to_have_title(re.compile(r"^\(1\) Tickets · dagmerge$"))
        assert page.evaluate("window.__notified") == ["dagmerge: a merge waits for you: 1 waiting under Reviews"]
        assert page.evaluate("window.__loaded"), "the ticket list was reloaded"

        page.locator("#nav-reviews").click()
        self.wait_live()
        page.evaluate("window.__loaded = true")
        second = self.disagreeing(repo, "Second disagreement")
        assert drive(second.pk, pool, timeout=60) == "awaiting_review"
        waiting = MergeAttempt.objects.get(ticket=second, status="conflicted")
        expect(page.locator(f"#inbox-{waiting.pk}")).to_contain_text("Second disagreement")
        expect(page.locator("#inbox")).to_contain_text("2 merges waiting for a person")
        expect(page.locator("#nav-reviews .count")).to_have_text("2")
        expect(page).to_have_title(re.compile(r"^\(2\) Reviews · dagmerge$"))
        assert page.evaluate("window.__loaded"), "the inbox was reloaded"

        # The ticket itself says what waits, why, and opens the review.
        page.goto(self.url(f"/tickets/{second.pk}/"))
        banner = page.locator("#ticket-header .needs-you")
        expect(banner).to_contain_text(f"merge #{waiting.pk} (join → D) waits for a person")
        expect(banner).to_contain_text(waiting.review_reason)
        self.screenshot("ticket-needs-you")
        banner.get_by_role("link", name="Open the review").click()
        expect(page).to_have_url(self.url(f"/reviews/{waiting.pk}/"))
        expect(page.locator("#remaining-overall")).to_contain_text("1 remaining")
        assert self.console_errors() == []
