"""A person settles conflicting merges in a real browser, against real git, with no reload anywhere."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Task, Ticket
from coordination.running.leases import Lease
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

        # The ticket reaches review while the page watches; the navigation counts it.
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        expect(page.locator("#ticket-header .badge").first).to_have_text("awaiting review")
        expect(page.locator("#nav-reviews .count")).to_have_text("1")
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        expect(page.locator("#remaining-overall")).to_contain_text("3 remaining in 1 file")
        self.wait_live()
        page.evaluate("window.__loaded = true")
        config = ConflictFile.objects.get(attempt=attempt, path="settings.py")
        hunk = [page.locator(f"#hunk-{config.pk}-{i}") for i in range(3)]

        # Conflict first: the first screen holds both tasks' intent and the first hunk, with 3 lines around
        # it and the changed words marked.
        theirs = page.locator(".round.open .side.theirs .instructions")
        expect(theirs).to_have_text("Set V10, V30 and V50 to 'c'.")
        expect(theirs).to_be_in_viewport()
        expect(hunk[0].locator(".pane.ours")).to_be_in_viewport()
        expect(hunk[0].locator(".pane.base .ctx")).to_have_text([" V7 = 7", " V8 = 8", " V9 = 9", " V11 = 11",
                                                                  " V12 = 12", " V13 = 13"])
        expect(hunk[0].locator(".pane.ours mark")).to_have_text(["10", "'b'"])
        expect(hunk[0].locator(".pane.theirs mark")).to_have_text(["10", "'c'"])
        markers = page.locator(f"#file-{config.pk} .marker-count")
        expect(markers).to_have_text("3 conflicts marked")
        self.screenshot("review-page-first-screen", full_page=False)

        # The keyboard decides; the highlight stays on the hunk through each decision's swap.
        current = re.compile(r"\bcurrent\b")
        page.keyboard.press("j")
        expect(hunk[0]).to_have_class(current)
        page.keyboard.press("t")
        expect(hunk[0]).to_have_attribute("data-decided", "1")
        expect(hunk[0]).to_contain_text("decided by person: alice")
        expect(hunk[0].locator(".hunk-head .choice")).to_have_text("theirs")
        expect(hunk[0]).to_have_class(current)
        expect(markers).to_have_text("2 conflicts marked")
        page.keyboard.press("j")
        page.keyboard.press("b")
        expect(hunk[1]).to_have_attribute("data-decided", "1")
        expect(hunk[1].locator(".hunk-head .choice")).to_have_text("both, ours first")
        expect(hunk[1]).to_have_class(current)
        expect(hunk[0]).not_to_have_class(current)
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
        # The refusal is the page's only console error: the 409 itself (browser and htmx both say so).
        assert all("409" in m or "htmx:responseError" in m for m in self.console_errors()), self.console
        self.console.clear()

        # Without an agent, "retry with a hint" is disabled and says why; a forged retry is refused, in words.
        page.locator(".more-actions summary").click()
        expect(page.locator("#retry")).to_be_disabled()
        expect(page.locator("#retry-blocked")).to_contain_text("no ANTHROPIC_API_KEY")
        refused = page.request.post(self.url(f"/reviews/{attempt.pk}/retry/"), form={"hint": "keep both"},
                                    headers={"X-CSRFToken": token, "Referer": self.url("/"), "HX-Request": "true"})
        assert refused.status == 409 and "no ANTHROPIC_API_KEY" in refused.text() and "refused" in refused.text()

        hunk[2].locator("summary", has_text="Edit").click()
        hunk[2].locator("textarea").fill("V50 = 'bc'")
        hunk[2].locator('button[value="edit"]').click()
        expect(hunk[2]).to_have_attribute("data-decided", "1")
        expect(hunk[2].locator(".hunk-head .choice")).to_have_text("edited")
        expect(hunk[2]).to_have_class(current)
        expect(page.locator("#remaining-overall")).to_contain_text("0 remaining")
        expect(page.locator("#review-summary .gate.ok")).to_be_visible()
        expect(markers).to_have_text("no conflict markers")
        # The result pane counts markers as one types (the server checks the syntax when it is saved).
        result = page.locator(f"#file-{config.pk} textarea.result-text")
        text = result.input_value()
        result.fill(text + "<<<<<<< mine\nV61 = 1\n=======\nV61 = 2\n>>>>>>> theirs\n")
        expect(markers).to_have_text("1 conflict marked")
        result.fill(text)
        expect(markers).to_have_text("no conflict markers")
        self.screenshot("review-page")

        # `a` asks first: Escape leaves everything as it was; Enter approves. The merge is queued while
        # another merge of the ticket holds its lock: the page says "approving…" and offers no decision.
        busy = Lease(Ticket, ticket.pk, 60, prefix="merge_lock")
        assert busy.take()
        page.locator("#review-title h1").click()
        page.keyboard.press("a")
        dialog = page.locator("#approve-dialog")
        expect(dialog).to_be_visible()
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        assert not ReviewAction.objects.filter(attempt=attempt, action="approve").exists()
        page.keyboard.press("a")
        expect(dialog).to_be_visible()
        page.keyboard.press("Enter")
        summary = page.locator("#review-summary")
        expect(summary).to_contain_text("Approving…")
        expect(summary).to_contain_text("Asked by alice")
        expect(page.locator("button[name=choice]")).to_have_count(0)
        expect(page.locator("textarea")).to_have_count(0)
        busy.release()
        expect(summary.locator("h2")).to_have_text("Merged")
        expect(summary).to_contain_text("Approved by alice")
        d = Task.objects.get(ticket=ticket, key="D")
        expect(page.locator(f"#task-row-{d.pk} .badge")).to_have_text(re.compile("ready|claimed|running|succeeded"))
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        expect(page.locator(f"#task-row-{d.pk} .badge")).to_have_text("succeeded")
        assert page.evaluate("window.__loaded"), "the review page was reloaded"
        assert self.console_errors() == [], self.console

        # The round stays readable as a record, after a reload too: every hunk, the choice, who, when.
        page.reload()
        expect(page.locator("#round-1 .round-head")).to_contain_text("approved by alice")
        for i, choice in enumerate(["theirs", "both, ours first", "edited"]):
            expect(hunk[i].locator(".hunk-head .choice")).to_have_text(choice)
            expect(hunk[i].locator(".decided-by")).to_have_text("decided by person: alice")
            expect(hunk[i].locator(".hunk-head time")).to_have_attribute("datetime", re.compile(r"^\d{4}-"))
        expect(page.get_by_text("No conflicted file")).to_have_count(0)
        expect(page.locator("button[name=choice], textarea, #approve")).to_have_count(0)
        self.screenshot("review-record")
        assert self.console_errors() == [], self.console

        ticket.refresh_from_db()
        merged = repo.show(ticket.branch, "settings.py")
        assert "V10 = 'c'\n" in merged and "V30 = 'b'\nV30 = 'c'\n" in merged and "V50 = 'bc'\n" in merged
        actions = list(ReviewAction.objects.filter(attempt=attempt).values_list("action", flat=True))
        assert actions == ["decide_hunk", "decide_hunk", "decide_hunk", "approve"]

    def test_a_viewer_reads_the_review_with_no_decision_control_or_shortcut(self):
        self.log_in(factories.bob())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers()
        ticket = self.conflicting_ticket(repo)
        assert drive(ticket.pk, pool, timeout=60) == "awaiting_review"
        attempt = MergeAttempt.objects.get(ticket=ticket, status="conflicted")
        page = self.page
        page.goto(self.url(f"/reviews/{attempt.pk}/"))
        self.wait_live()
        expect(page.locator(".hunk")).to_have_count(3)
        expect(page.locator("[data-key]:not(#next-unresolved)")).to_have_count(0)
        page.locator(".keys summary").click()
        keys = page.locator(".keys dl")
        expect(keys).to_contain_text("next / previous unresolved hunk")
        expect(keys).not_to_contain_text("take ours")
        expect(keys).not_to_contain_text("approve")
        page.keyboard.press("j")
        page.keyboard.press("o")
        page.keyboard.press("a")
        expect(page.locator("dialog[open]")).to_have_count(0)
        expect(page.locator(".hunk.current")).to_have_count(1)
        assert not ReviewAction.objects.exists()
        assert self.console_errors() == [], self.console

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
        expect(page.locator("#review-summary h2")).to_have_text("Merged")
        expect(page.locator("#review-summary")).to_contain_text("Approved by alice")
        # The cards stay as the record of what was decided for each whole file.
        expect(old.locator(".decided-whole")).to_contain_text("by alice: kept the changed file (whole file)")
        expect(logo.locator(".decided-whole")).to_contain_text("by alice: theirs (whole file)")
        expect(page.locator("button[name=choice]")).to_have_count(0)
        expect(page.locator("#ticket-header .badge").first).to_have_text("done", timeout=30_000)
        ticket.refresh_from_db()
        assert repo.show(ticket.branch, "old.txt").startswith("old\n")
        theirs = Task.objects.get(ticket=ticket, key=attempt.pending_sources[0] if attempt.pending_sources else "C")
        assert repo.git.run("show", f"{ticket.branch}:logo.bin").stdout == repo.git.run(
            "show", f"{theirs.head_sha}:logo.bin").stdout
