"""daphne killed (the whole process group) at a seeded random moment while a reviewer's approve is posted.

The approve is a queued job: the request only checks the gate, takes the attempt and queues the job, so it
answers at once and a worker does the merge. Whatever the moment of the kill — before the request reached
the view, while it ran, after it answered — the attempt is either still waiting for review (the reviewer
approves again once the dashboard is back) or its job completes: the ticket ends done, nothing is left."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import pytest

from merges.models import MergeAttempt
from tests import factories
from tests.faults.campaign import campaign_timeout, check_ticket, db, fault_kills, in_flight_rows
from tests.faults.processes import daphne, free_port
from tests.faults.scenarios import ApproveContinuing, conflicting_ticket, decide_all

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True), pytest.mark.timeout(campaign_timeout())]


class Browser:
    """A signed-in session on the dashboard, posting forms the way a browser does (CSRF cookie and token)."""

    def __init__(self, base: str):
        self.base, self.jar = base, CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> int:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.status

    def post(self, path: str, fields: dict[str, str]) -> int:
        token = next(cookie.value for cookie in self.jar if cookie.name == "csrftoken")
        data = urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers={"Referer": self.base + path})
        with self.opener.open(request, timeout=30) as response:
            return response.status

    def sign_in(self, username: str) -> None:
        self.get("/accounts/login/")
        self.post("/accounts/login/", {"username": username, "password": factories.PASSWORD})


def test_daphne_killed_during_an_approve_loses_nothing(bench, tmp_path):
    scenario = ApproveContinuing(bench, tmp_path)
    bench.worker()
    port = free_port()
    web = daphne(bench.env, bench.logs, port)
    bench.workers.append(web)  # stopped with the workers at the end
    web.start()
    factories.with_password(factories.alice())
    browser = Browser(f"http://127.0.0.1:{port}")
    browser.sign_in("alice")
    failures = []
    for _ in range(fault_kills()):
        ticket_id = conflicting_ticket(scenario)
        attempt = decide_all(ticket_id)
        answer: dict[str, object] = {}

        def approve(attempt_id: int = attempt.pk, answer: dict = answer) -> None:
            try:
                answer["status"] = browser.post(f"/reviews/{attempt_id}/approve/", {})
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                answer["error"] = type(exc).__name__

        poster = threading.Thread(target=approve)
        poster.start()
        delay = bench.rng.uniform(0.0, 0.3)
        time.sleep(delay)
        web.kill()
        killed_at = time.monotonic()
        poster.join(timeout=40)
        queued = db(lambda attempt_id=attempt.pk: MergeAttempt.objects.get(pk=attempt_id).status != "conflicted")
        web.start()
        if not queued:  # the request died before the view took the attempt: the reviewer approves again
            browser.post(f"/reviews/{attempt.pk}/approve/", {})
        status, _ = bench.settled(ticket_id, timeout=240)
        problems = check_ticket(bench, ticket_id, scenario.source)
        bench.record("daphne during approve", ticket_id, problems, delay_s=round(delay, 3), in_flight=True,
                     answered=answer.get("status") is not None, queued_before_the_kill=queued,
                     recovery_s=round(time.monotonic() - killed_at, 2))
        if problems.any():
            failures.append((ticket_id, dict(problems)))
    assert not failures, failures
    assert not in_flight_rows()
