"""Two reviewers, two browsers, one merge: each sees the other's decisions arrive, and an edit in progress is
never replaced under the person typing it: the page says what changed instead, and the server refuses to
save over a decision its page did not show.

The merge is written as a conflict leaves it (tests/factories.py); deciding and the live stream are real:
daphne, the event relay, htmx over the websocket, two Chromium contexts signed in as alice and dave.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from merges import review
from merges.models import ConflictFile, ReviewAction
from tests import factories
from tests.browser.conftest import BrowserTestCase


class TwoReviewersTests(BrowserTestCase):
    def open_review(self, page: Page, attempt_id: int) -> None:
        page.goto(self.url(f"/reviews/{attempt_id}/"))
        self.wait_live(page)
        page.evaluate("window.__loaded = true")  # gone if the page reloads

    def test_each_sees_the_others_decisions_live_and_an_unsaved_edit_is_kept_and_shown_in_conflict(self):
        attempt = factories.conflicted_attempt()
        config = ConflictFile.objects.get(attempt=attempt, path="config.txt")
        alice = self.page
        self.log_in(factories.alice())
        dave_context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.addCleanup(dave_context.close)
        dave = dave_context.new_page()
        dave_errors: list[str] = []
        dave.on("console", lambda m: dave_errors.append(m.text) if m.type == "error" else None)
        dave.on("pageerror", lambda error: dave_errors.append(str(error)))
        self.log_in(factories.dave(), dave)
        self.open_review(alice, attempt.pk)
        self.open_review(dave, attempt.pk)

        def hunk(page: Page, index: int):
            return page.locator(f"#hunk-{config.pk}-{index}")

        # alice takes theirs for hunk 2; dave's page shows it, with the count and the history, unreloaded.
        expect(dave.locator("#remaining-overall")).to_contain_text("4 remaining")
        hunk(alice, 1).locator('button[value="theirs"]').click()
        expect(hunk(alice, 1)).to_have_attribute("data-decided", "1")
        expect(hunk(dave, 1)).to_have_attribute("data-decided", "1")
        expect(hunk(dave, 1).locator(".decided-by")).to_have_text("decided by person: alice")
        expect(hunk(dave, 1).locator(".hunk-head .choice")).to_have_text("theirs")
        expect(dave.locator("#remaining-overall")).to_contain_text("3 remaining")
        expect(dave.locator("#review-history")).to_contain_text("alice")

        # dave starts an edit of hunk 3 and has not saved it when alice decides that hunk: dave's section stays
        # as it was, with his text, and says what alice did.
        hunk(dave, 2).locator("summary", has_text="Edit").click()
        hunk(dave, 2).locator("textarea").fill("C = 7")
        hunk(alice, 2).locator('button[value="ours"]').click()
        expect(hunk(alice, 2)).to_have_attribute("data-decided", "1")
        conflict = dave.locator(f"#file-{config.pk} .live-conflict")
        expect(conflict).to_contain_text("alice decided hunk 3: ours, while you were editing it here")
        expect(hunk(dave, 2)).to_have_attribute("data-decided", "0")
        expect(hunk(dave, 2).locator("textarea")).to_have_value("C = 7")
        expect(dave.locator("#remaining-overall")).to_contain_text("2 remaining")  # the summary moved on

        # Saving on that old view is refused by the server: the section now shows alice's decision, says
        # why nothing was saved, and still holds dave's text.
        hunk(dave, 2).locator('button[value="edit"]').click()
        expect(hunk(dave, 2).locator(".stale")).to_contain_text("hunk 3 of config.txt was decided by alice")
        expect(hunk(dave, 2).locator(".decided-by")).to_have_text("decided by person: alice")
        expect(hunk(dave, 2).locator("textarea")).to_have_value("C = 7")
        assert review.hunk_decisions(ConflictFile.objects.get(pk=config.pk))[2]["lines"] == ["C = 5"]

        # Having seen it, dave saves again: his text replaces alice's, and alice's page shows it.
        hunk(dave, 2).locator('button[value="edit"]').click()
        expect(hunk(dave, 2).locator(".decided-by")).to_have_text("decided by person: dave")
        expect(hunk(alice, 2).locator(".decided-by")).to_have_text("decided by person: dave")
        expect(hunk(alice, 2).locator(".hunk-result")).to_contain_text("C = 7")

        # The other way to look: dave edits the whole result, alice undoes her hunk 2; dave's page offers
        # what is decided now and keeps his text in the editor when he takes it.
        result = dave.locator(f"#file-{config.pk} textarea.result-text")
        result.fill(result.input_value() + "# dave was here\n")
        hunk(alice, 1).locator("button.undo").click()
        expect(hunk(alice, 1)).to_have_attribute("data-decided", "0")
        expect(conflict).to_contain_text("alice undid hunk 2")
        expect(hunk(dave, 1)).to_have_attribute("data-decided", "1")
        dave.locator(".show-theirs").click()
        expect(hunk(dave, 1)).to_have_attribute("data-decided", "0")
        assert result.input_value().endswith("# dave was here\n")
        expect(dave.locator(f"#file-{config.pk} .live-conflict")).to_have_count(0)

        assert alice.evaluate("window.__loaded") and dave.evaluate("window.__loaded")  # no reload anywhere
        # The only errors: dave's refused save (the 409 itself; browser and htmx both say so).
        assert all("409" in m or "htmx:responseError" in m for m in dave_errors), dave_errors
        assert not self.console_errors(), self.console

    def test_the_admin_shows_the_decision_as_a_diff_and_the_events_newest_first_for_one_ticket(self):
        attempt = factories.conflicted_attempt()
        config = ConflictFile.objects.get(attempt=attempt, path="config.txt")
        other = factories.make_ticket("Another ticket", repository=attempt.ticket.repository)
        factories.make_task(other, "X").transition("ready")
        self.log_in(factories.alice())
        page = self.page
        self.open_review(page, attempt.pk)
        page.locator(f"#hunk-{config.pk}-1").locator('button[value="theirs"]').click()
        expect(page.locator(f"#hunk-{config.pk}-1")).to_have_attribute("data-decided", "1")

        # The decision, in the admin: a unified diff, one line a row, removed red and added green.
        action = ReviewAction.objects.get(attempt=attempt, action="decide_hunk")
        page.goto(self.url(f"/admin/merges/reviewaction/{action.pk}/change/"))
        diff = page.locator("pre", has_text="@@")
        expect(diff.locator("span", has_text=re.compile(r"^-B = 5$"))).to_have_css("color", "rgb(127, 29, 29)")
        expect(diff.locator("span", has_text=re.compile(r"^ B = 9$"))).to_be_visible()
        assert "\\n" not in diff.inner_text()

        # The ticket's events, newest first, filtered to this ticket: the decision is on top.
        page.goto(self.url(f"/admin/coordination/event/?ticket__id__exact={attempt.ticket_id}"))
        kinds = page.locator("#result_list tbody td.field-kind")
        expect(kinds.first).to_have_text("review.decided")
        assert "task.ready" not in kinds.all_inner_texts()  # the other ticket's
        ids = [int(i) for i in page.locator("#result_list tbody th.field-id, #result_list tbody td.field-id")
               .all_inner_texts()]
        assert ids == sorted(ids, reverse=True) and ids
