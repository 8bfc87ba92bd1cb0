"""Views for scale on the ticket page, in Chromium: the folded join table and its filter, a task's lineage
lit in the graph, live timers, the timeline, a failed publish as a problem; and the page the README shows."""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from coordination.jobs.driving import drive
from coordination.models import Event, Join, Task, Ticket
from merges.models import MergeAttempt
from tests import factories
from tests.browser.conftest import BrowserTestCase
from tests.browser.test_review import SETTINGS, change, writer
from tests.scenarios import sh, source_repo, submit


def sixty_tasks():
    """Ten roots, then five layers of ten, each task joining two of the layer before: 50 joins. The first
    three layers ran and merged clean; one join of the fourth waits for a person, one task of it runs; the
    rest wait. 32 tasks have a lane in the timeline: the 30 that ran, the running one, the one whose merge
    waits."""
    ticket = factories.make_ticket("Sixty tasks", status="awaiting_review")
    parents_of: dict[str, list[str]] = {f"r{i}": [] for i in range(10)}
    previous = list(parents_of)
    for layer in range(5):
        keys = [f"t{layer}-{i}" for i in range(10)]
        for i, key in enumerate(keys):
            parents_of[key] = [previous[i], previous[(i + 1) % 10]]
        previous = keys
    tasks = factories.make_dag(ticket, parents_of)
    now = timezone.now()
    done = [t for k, t in tasks.items() if k.startswith(("r", "t0", "t1"))]
    Task.objects.filter(pk__in=[t.pk for t in done]).update(
        status="succeeded", started_at=now - timedelta(seconds=90), finished_at=now - timedelta(seconds=80))
    clean = list(Join.objects.filter(continuation__in=done))
    Join.objects.filter(pk__in=[j.pk for j in clean]).update(status="merged")
    merge = dict(ticket=ticket, target_ref=ticket.ref, base_sha=factories.SHA)
    MergeAttempt.objects.bulk_create(MergeAttempt(join=j, status="merged", merge_order=["x", "y"], duration_ms=30,
                                                  started_at=now - timedelta(seconds=85), finished_at=now, **merge)
                                     for j in clean)
    Task.objects.filter(pk=tasks["t2-0"].pk).update(status="running", started_at=now - timedelta(seconds=5))
    waiting = tasks["t2-1"].join
    waiting.status = "awaiting_review"
    waiting.save()
    MergeAttempt.objects.create(join=waiting, status="conflicted", pending_sources=["t1-2"],
                                review_reason="2 conflict hunks, over the threshold of 0", **merge)
    return ticket, tasks


class TicketViewsTests(BrowserTestCase):
    def test_a_sixty_task_ticket_folds_clean_joins_filters_lights_lineage_and_counts_on(self):
        ticket, tasks = sixty_tasks()
        self.log_in(factories.bob())
        page = self.page
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()

        # 50 joins: the 20 that merged clean are folded away; the one waiting for a person says so.
        joins = page.locator("#joins .row:not(.head)")
        expect(joins).to_have_count(50)
        expect(page.locator("#joins .row:not(.head):visible")).to_have_count(30)
        expect(page.locator("#joins-summary")).to_contain_text("50 joins · 1 needs a look · 20 merged clean")
        page.locator("label.toggle-label").click()
        expect(page.locator("#joins .row:not(.head):visible")).to_have_count(50)
        page.locator("label.toggle-label").click()
        filter_box = page.locator('[data-filter="joins"]')
        filter_box.locator("select").select_option("awaiting_review")
        expect(page.locator("#joins .row:not(.head):visible")).to_have_count(1)
        expect(filter_box.locator(".shown")).to_have_text("1 of 50 shown")
        filter_box.locator("select").select_option("")
        filter_box.locator("input").fill("t0-3")  # searching also finds joins that merged clean
        expect(page.locator("#joins .row:not(.head):visible")).to_have_count(3)  # t0-3's own and two it feeds
        page.locator('[data-filter="task-table"] input').fill("t4-")
        expect(page.locator("#task-table .row:not(.head):visible")).to_have_count(10)

        # The graph is tall and tangled: pointing at a task lights up its lineage, the rest fades.
        middle = tasks["t2-5"]
        page.locator(f"#dag-node-{middle.pk}").hover()
        expect(page.locator(".dag-svg")).to_have_class(re.compile(r"\btracing\b"))
        lit = page.locator(".dag-svg g.n.on")
        # t2-5 itself; upstream: 2 + 3 + 4 (t1, t0, roots); downstream: 2 + 3 (t3, t4).
        expect(lit).to_have_count(1 + 2 + 3 + 4 + 2 + 3)
        expect(page.locator("#lineage")).to_have_text("t2-5: 9 upstream, 5 downstream")
        expect(page.locator(f"#dag-node-{tasks['r0'].pk}")).not_to_have_class(re.compile(r"\bon\b"))
        # Its edges: 2 + 4 + 6 upstream, 2 + 4 downstream; not C→D-like edges between its kin that bypass it.
        expect(page.locator(".dag-svg .edges path.on")).to_have_count(18)
        # A row click keeps it lit while the pointer goes elsewhere; a second click lets go.
        page.locator('[data-filter="task-table"] input').fill("")
        row = page.locator(f"#task-row-{tasks['t4-9'].pk} span").nth(1)
        row.click()
        page.mouse.move(5, 5)
        expect(page.locator(f"#dag-node-{tasks['t4-9'].pk}")).to_have_class(re.compile(r"\bon\b"))
        expect(page.locator("#lineage")).to_contain_text("click its row again to let go")
        row.click()
        expect(page.locator(".dag-svg")).not_to_have_class(re.compile(r"\btracing\b"))

        # Durations, a timer that counts on, and the timeline with the running bar.
        running = page.locator(f"#task-row-{tasks['t2-0'].pk} time.elapsed")
        first = running.inner_text()
        expect(running).not_to_have_text(first, timeout=3000)
        expect(page.locator(f"#task-row-{tasks['r0'].pk}")).to_contain_text("10.0 s")
        expect(page.locator("#timeline svg")).to_have_attribute("aria-label", re.compile(r"timeline of 32 tasks"))
        expect(page.locator("#timeline rect.run.going")).to_have_count(1)
        self.screenshot("ticket-sixty-tasks")
        height = page.evaluate("document.documentElement.scrollHeight")
        assert height < 6000, f"the page is {height} px tall"  # was 10,355 px with a card per join
        assert self.console_errors() == []

    def test_a_failed_publish_shows_as_a_problem_and_goes_away_when_publishing_works(self):
        ticket = factories.make_ticket("Pushed over", published_sha="e" * 40)
        ticket.head_sha = "f" * 40
        ticket.save()
        factories.make_task(ticket, "A", status="succeeded")
        self.log_in(factories.bob())
        page = self.page
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()
        Ticket.objects.filter(pk=ticket.pk).update(publish_failures=2, publish_retry_at=timezone.now())
        Event.record(ticket, "publish.failed", {"error": "! [rejected] ticket/1 -> ticket/1 (stale info)"})
        problem = page.locator("#ticket-header .problem")
        expect(problem).to_contain_text("(2 failed pushes so far)")
        expect(problem).to_contain_text("Problem: publishing failed.")
        expect(problem).to_contain_text("it is still at eeeeeeeeee")
        expect(problem).to_contain_text("(stale info)")
        expect(page.locator("#ticket-header")).to_contain_text("(not published: see the problem above)")
        ticket.published_sha = ticket.head_sha
        ticket.save()
        Event.record(ticket, "ticket.published", {"sha": ticket.head_sha})
        expect(problem).to_have_count(0)
        expect(page.locator("#ticket-header")).to_contain_text("(published)")
        assert self.console_errors() == []

    def test_the_ticket_page_as_the_readme_shows_it(self):
        """A real run: A, then B, C and E side by side; D joins B and C cleanly and runs; F's join of C and E
        waits for a person. The picture goes to docs/ with DAGMERGE_DOCS_SCREENSHOTS=1."""
        self.log_in(factories.alice())
        repo = source_repo(self.workspace / "repos", {"settings.py": SETTINGS})
        pool = self.workers(4)
        ticket = submit(repo, [
            {"key": "A", "title": "Set up the package", "command": sh("sleep 1; mkdir -p pkg; touch pkg/init.py")},
            {"key": "B", "title": "Feature X", "depends_on": ["A"], "command": sh("sleep 1.5; echo x > pkg/x.py")},
            {"key": "C", "title": "Faster timeouts", "depends_on": ["A"],
             "command": writer("settings.py", change(SETTINGS, {3: "'fast'"}), 2)},
            {"key": "E", "title": "Patient timeouts", "depends_on": ["A"],
             "command": writer("settings.py", change(SETTINGS, {3: "'slow'"}), 2.5)},
            {"key": "D", "title": "Integrate X", "depends_on": ["B", "C"], "command": sh("sleep 1; test -f pkg/x.py")},
            {"key": "F", "title": "Ship the timeouts", "depends_on": ["C", "E"], "command": sh("true")},
        ], title="Timeouts and feature X")
        page = self.page
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(self.url(f"/tickets/{ticket.pk}/"))
        self.wait_live()
        assert drive(ticket.pk, pool, timeout=90) == "awaiting_review"
        expect(page.locator("#ticket-header .needs-you")).to_contain_text("(join → F) waits for a person")
        expect(page.locator(f"#task-row-{Task.objects.get(ticket=ticket, key='D').pk} .badge")).to_have_text(
            "succeeded")
        page.locator(f"#dag-node-{Task.objects.get(ticket=ticket, key='C').pk}").hover()
        expect(page.locator("#lineage")).to_contain_text("C: 1 upstream, 2 downstream")
        self.screenshot("ticket-page", docs=True)
        assert self.console_errors() == []
