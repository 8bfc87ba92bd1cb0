"""A person settles conflicting merges in a real browser, against real git, with no reload anywhere."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Task, Ticket
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.scenarios import sh, source_repo, submit

SETTINGS = "".join(f"V{i} = {i}\n" for i in range(1, 61))  # valid Python: validation checks it compiles


def change(text: str, values: dict[int, str]) -> str:
    lines = text.splitlines(keepends=True)
    for number, value in values.items():
        lines[number - 1] = f"V{number} = {value}\n"
    return "".join(lines)


def writer(path: str, text: str, pause: float = 1.0) -> str:
    return sh(f'sleep {pause}; printf "%s" "{text}" > {path}')  # the texts hold no " $ \\ or `


class ReviewTests(BrowserTestCase):
    def conflicting_ticket(self, repo) -> Ticket:
        """B and C change the same three lines of settings.py differently; D needs the merged file."""
        b = change(SETTINGS, {10: "'b'", 30: "'b'", 50: "'b'"})
        c = change(SETTINGS, {10: "'c'", 30: "'c'", 50: "'c'"})
        return submit(repo, [
            {"key": "B", "title": "Settings for B", "instructions": "Set V10, V30 and V50 to 'b'.",
             "command": writer("settings.py", b)},
            {"key": "C", "title": "Settings for C", "instructions": "Set V10, V30 and V50 to 'c'.",
             "command": writer("settings.py", c, pause=1.5)},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"],
             "command": sh("grep -qx \"V50 = 'bc'\" settings.py && grep -qx \"V10 = 'c'\" settings.py")},
        ])

    def test_a_reviewer_settles_three_hunks_approves_and_watches_the_ticket_finish(self):
        alice = factories.alice()
        self.log_in(alice)
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = self.conflicting_ticket(repo)
        page = self.page
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()
        page.evaluate("window.__loaded = true")

        # The ticket reaches review while the page watches; the navigation counts it.
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        expect(page.locator("#ticket-header .badge").first).to_have_text("awaiting review")
        expect(page.locator("#nav-reviews .count")).to_have_text("1")
        assert page.evaluate("window.__loaded"), "the ticket page was reloaded"
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        page.locator(f"#join-{attempt.join_id} a", has_text="review").click()
        expect(page.locator("#remaining-overall")).to_contain_text("3 remaining in 1 file")
        self.wait_live()
        page.evaluate("window.__loaded = true")
        config = ConflictFile.objects.get(attempt=attempt, path="settings.py")
        hunk = [page.locator(f"#hunk-{config.pk}-{i}") for i in range(3)]
        expect(page.locator(".side.theirs")).to_contain_text("Set V10, V30 and V50 to 'c'.")
        expect(hunk[0].locator(".pane.base")).to_contain_text("V10 = 10")

        hunk[0].locator('button[value="theirs"]').click()
        expect(hunk[0]).to_have_attribute("data-decided", "1")
        expect(hunk[0]).to_contain_text("decided by person: alice")
        hunk[1].locator('button[value="both_ours_first"]').click()
        expect(hunk[1]).to_have_attribute("data-decided", "1")
        expect(page.locator("#remaining-overall")).to_contain_text("1 remaining")

        # One hunk still open: the server refuses, from the button and from a forged request alike.
        page.locator("#approve").click()
        expect(page.locator("#review-summary .gate.refused")).to_contain_text("settings.py: 1 undecided")
        token = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        forged = page.request.post(self.url(f"/reviews/{attempt.pk}/approve/"),
                                   headers={"X-CSRFToken": token, "Referer": self.url("/"), "HX-Request": "true"})
        assert forged.status == 409 and "settings.py: 1 undecided" in forged.text()
        attempt.refresh_from_db()
        assert attempt.status == "conflicted"

        hunk[2].locator("summary", has_text="Edit").click()
        hunk[2].locator("textarea").fill("V50 = 'bc'")
        hunk[2].locator('button[value="edit"]').click()
        expect(hunk[2]).to_have_attribute("data-decided", "1")
        expect(page.locator("#remaining-overall")).to_contain_text("0 remaining")
        expect(page.locator("#review-summary .gate.ok")).to_be_visible()
        self.screenshot("review-page")

        page.locator("#approve").click()
        expect(page.locator("#review-summary")).to_contain_text("Done: approved")
        d = Task.objects.get(ticket=ticket, key="D")
        expect(page.locator(f"#task-row-{d.pk} .badge")).to_have_text(re.compile("ready|claimed|running|succeeded"))
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        expect(page.locator(f"#task-row-{d.pk} .badge")).to_have_text("succeeded")
        assert page.evaluate("window.__loaded"), "the review page was reloaded"
        self.screenshot("review-approved")

        ticket.refresh_from_db()
        merged = repo.show(ticket.branch, "settings.py")
        assert "V10 = 'c'\n" in merged and "V30 = 'b'\nV30 = 'c'\n" in merged and "V50 = 'bc'\n" in merged
        actions = list(ReviewAction.objects.filter(attempt=attempt).values_list("action", flat=True))
        assert actions == ["decide_hunk", "decide_hunk", "decide_hunk", "approve"]

    def test_modify_delete_and_binary_conflicts_are_settled_from_their_cards(self):
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos", {"old.txt": "old\n", "logo.bin": "\0base\0"})
        pool = self.workers()
        ticket = submit(repo, [
            {"key": "B", "title": "Remove old, new logo", "command": sh("rm old.txt; printf '\\0b\\0' > logo.bin")},
            {"key": "C", "title": "Change old, other logo",
             "command": sh("sleep 0.5; echo changed >> old.txt; printf '\\0c\\0' > logo.bin")},
            {"key": "D", "title": "Integrate", "depends_on": ["B", "C"], "command": sh("test -f old.txt")},
        ])
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        files = {f.path: f for f in ConflictFile.objects.filter(attempt=attempt)}
        assert {f.kind for f in files.values()} == {"modify/delete", "binary"}
        page = self.page
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        old, logo = page.locator(f"#file-{files['old.txt'].pk}"), page.locator(f"#file-{files['logo.bin'].pk}")
        expect(old.locator(".explain")).to_contain_text("One side changed this file and the other deleted it")
        expect(logo.locator(".explain")).to_contain_text("binary")

        old.locator('button[value="keep"]').click()
        expect(old).to_have_attribute("data-remaining", "0")
        logo.locator('button[value="theirs"]').click()
        expect(logo).to_have_attribute("data-remaining", "0")
        expect(logo).to_contain_text("Decided for the whole file")
        expect(page.locator("#remaining-overall")).to_contain_text("0 remaining")
        self.screenshot("review-cards")
        page.locator("#approve").click()
        expect(page.locator("#review-summary")).to_contain_text("Done: approved")
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        ticket.refresh_from_db()
        assert repo.show(ticket.branch, "old.txt").startswith("old\n")
        theirs = Task.objects.get(ticket=ticket, key=attempt.pending_sources[0] if attempt.pending_sources else "C")
        assert repo.git.run("show", f"{ticket.branch}:logo.bin").stdout == repo.git.run(
            "show", f"{theirs.head_sha}:logo.bin").stdout
