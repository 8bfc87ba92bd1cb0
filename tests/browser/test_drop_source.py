"""Dropping a source, defined: the review page says what happens before the click, and the ticket's graph
shows the dropped run and the re-run as a node and an edge of their own afterwards."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Task
from merges.models import MergeAttempt
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.scenarios import sh, source_repo, submit


class DropSourceTests(BrowserTestCase):
    def test_the_page_says_what_dropping_means_and_the_graph_draws_the_rerun(self):
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "B", "title": "B's value", "command": writer("settings.py", change(SETTINGS, {7: "'b'"}), 0.2)},
            {"key": "C", "title": "C's value", "command": writer("settings.py", change(SETTINGS, {7: "'c'"}), 0.6)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("true")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        [dropped] = attempt.pending_sources
        kept = ({"B", "C"} - {dropped}).pop()
        page = self.page
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        page.locator(".more-actions summary").click()
        means = page.locator("form.drop")
        expect(means).to_contain_text(f"Dropping {dropped} means:")
        expect(means).to_contain_text(f"the other sources are merged, and D starts from that merge, without "
                                      f"waiting for {dropped}")
        expect(means).to_contain_text(f"{dropped} is not lost: it runs again on its own, on the merged head")
        expect(means).to_contain_text(f"its re-run (↻ {dropped}) as a node of its own")
        dialogs: list[str] = []

        def accept(dialog) -> None:
            dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", accept)
        means.get_by_role("button", name=f"Drop {dropped}: merge the rest").click()
        expect(page.locator("#review-summary")).to_contain_text(f"{dropped} dropped by alice", timeout=30_000)
        assert dialogs and f"{dropped} runs again on its own, on the merged head" in dialogs[0]

        # The server runs what the drop started (the merge of the rest, D, the re-run) on its own workers.
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        page.reload()
        task = Task.objects.get(ticket=ticket, key=dropped)
        ghost, rerun = page.locator(f"#dag-ghost-{task.pk}"), page.locator(f"#dag-node-{task.pk}")
        expect(ghost.locator("a")).to_have_class(re.compile(r"\bst-dropped\b"))
        expect(rerun).to_contain_text(f"↻ {dropped}")
        expect(rerun.locator("a")).to_have_class(re.compile(r"\bst-succeeded\b"))
        expect(page.locator(".dag-svg path.dropped")).to_have_count(1)
        kept_id = Task.objects.get(ticket=ticket, key=kept).pk
        expect(page.locator(f'.dag-svg path.rerun[data-e="{kept_id}>{task.pk}"]')).to_have_count(1)
        # The re-run sits in the continuation's column, after the join; the first run where it was.
        x = {name: loc.evaluate("g => g.transform.baseVal[0].matrix.e")
             for name, loc in (("ghost", ghost), ("rerun", rerun),
                               ("D", page.locator(f"#dag-node-{Task.objects.get(ticket=ticket, key='D').pk}")))}
        assert x["rerun"] == x["D"] > x["ghost"], x
        join_row = page.locator(f"#join-{attempt.join_id}")
        expect(join_row).to_contain_text(f"{dropped} dropped by alice: it runs again on its own")
        self.screenshot("ticket-dropped-source")
        assert self.console_errors() == []
