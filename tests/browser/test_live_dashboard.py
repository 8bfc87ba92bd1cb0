"""The live dashboard in a real browser: updates without reload, the polling fallback, a viewer's rights."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Task
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.scenarios import sh, source_repo, submit


def diamond(repo, pause: float = 1.0) -> list[dict]:
    """A → {B, C} → D, each task taking a moment so the page sees it run."""
    def write(path: str) -> str:
        return sh(f"sleep {pause}; echo {path} > {path}")

    return [
        {"key": "A", "title": "Set up", "command": write("a.txt")},
        {"key": "B", "title": "Feature B", "depends_on": ["A"], "command": write("b.txt")},
        {"key": "C", "title": "Feature C", "depends_on": ["A"], "command": write("c.txt")},
        {"key": "D", "title": "Integrate", "depends_on": ["B", "C"],
         "command": sh(f"sleep {pause}; test -f b.txt && test -f c.txt")},
    ]


class LiveDashboardTests(BrowserTestCase):
    def test_a_viewer_watches_a_ticket_finish_without_reloading_and_has_no_action_buttons(self):
        bob = factories.bob()
        self.log_in(bob)
        repo = source_repo(self.workspace / "repos")
        pool = self.workers()
        ticket = submit(repo, diamond(repo))
        self.page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()
        self.page.evaluate("window.__loaded = performance.timeOrigin")  # a reload would lose this

        expect(self.page.locator("#ticket-header .badge").first).to_have_text("running")
        d = Task.objects.get(ticket=ticket, key="D")
        expect(self.page.locator(f"#task-row-{d.pk} .badge")).to_have_text("running", timeout=30_000)
        assert drive(ticket.pk, pool, timeout=60) == "done"
        expect(self.page.locator("#ticket-header .badge").first).to_have_text("done")
        expect(self.page.locator(f"#dag-node-{d.pk} a")).to_have_class(re.compile(r"\bst-succeeded\b"))
        expect(self.page.locator("#ticket-header .progress-text")).to_contain_text("4/4 tasks succeeded")
        assert self.page.evaluate("window.__loaded") is not None, "the page was reloaded"
        expect(self.page.locator("#merge-chart svg")).to_be_visible()
        self.screenshot("ticket-page")

        # bob reads, and only reads: no button, and the action URLs answer 403 even with a CSRF token.
        assert self.page.locator("text=Cancel ticket").count() == 0
        token = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        for path in (f"/tickets/{ticket.pk}/cancel/", f"/tickets/{ticket.pk}/tasks/A/retry/"):
            response = self.page.request.post(self.url(path), headers={"X-CSRFToken": token,
                                                                       "Referer": self.url("/")})
            assert response.status == 403, path

    def test_while_the_socket_is_down_the_page_polls_and_says_so(self):
        self.log_in(factories.bob())
        ticket = factories.make_ticket("Polled")
        task = factories.make_task(ticket, "A")
        # Every websocket of this page is refused by the "network": the page must fall back to polling.
        self.page.route_web_socket(re.compile(r"/ws/tickets/"), lambda ws: ws.close(code=1011))
        self.page.goto(self.url(f"/tickets/{ticket.pk}/"))
        expect(self.page.locator("#live-badge")).to_have_attribute("data-state", "polling")
        expect(self.page.locator("#live-badge")).to_contain_text("polling")

        task.transition("ready")
        expect(self.page.locator(f"#task-row-{task.pk} .badge")).to_have_text("ready", timeout=10_000)
        expect(self.page.locator("#ticket-header .progress-text")).to_contain_text("1 ready")
