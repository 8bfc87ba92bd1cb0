"""/metrics: who may scrape it, and that every figure is what the rows say."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from coordination.models import Event, Repository
from merges.models import ConflictFile, MergeAttempt
from tests import factories

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scraper-token"


@pytest.fixture
def metrics_on(settings):
    settings.DAGMERGE_METRICS = True
    settings.DAGMERGE_METRICS_TOKEN = TOKEN


def scrape(client: Client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode()) for sample in family.samples}


def test_metrics_are_off_unless_asked_for(bob_client):
    assert bob_client.get("/metrics").status_code == 404


def test_anonymous_scrapers_are_refused_and_the_token_or_a_viewer_is_let_in(metrics_on, client, bob_client):
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401  # not a bearer token
    charlie = Client()
    charlie.force_login(factories.charlie())
    assert charlie.get("/metrics").status_code == 403  # signed in, but not a viewer
    assert client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405

    assert scrape(client, Authorization=f"Bearer {TOKEN}")
    assert scrape(bob_client)


def test_no_token_configured_lets_no_bearer_in(settings, client):
    settings.DAGMERGE_METRICS, settings.DAGMERGE_METRICS_TOKEN = True, ""
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def _rows() -> None:
    """Two tickets' worth of rows, each figure below counted from them by hand."""
    now = timezone.now()
    repository = factories.make_repository(f"repo{Repository.objects.count()}")
    first = factories.make_ticket("first", repository, status="running", llm_cost_usd=Decimal("1.25"),
                                  llm_invocations=3)
    second = factories.make_ticket("second", repository, status="done", llm_cost_usd=Decimal("0.50"),
                                   llm_invocations=1)
    a = factories.make_task(first, "A", status="succeeded", started_at=now - timedelta(seconds=3), finished_at=now,
                            attempts=1)
    b = factories.make_task(first, "B", status="failed", started_at=now - timedelta(seconds=100), finished_at=now,
                            attempts=3)
    factories.make_task(first, "C", status="ready")
    factories.make_task(first, "D", [a, b], status="pending", waiting_on="E (both claim x.py)")
    factories.make_task(second, "E", status="succeeded", started_at=now - timedelta(seconds=2000), finished_at=now,
                        attempts=2)
    first.joins.update(status="synthesizing")
    for ms, status in ((40, "merged"), (300, "merged"), (7000, "conflicted"), (0, "running")):
        attempt = MergeAttempt.objects.create(ticket=first, target_ref="refs/heads/ticket/1", base_sha="a" * 40,
                                              status=status, duration_ms=ms)
    ConflictFile.objects.create(attempt=attempt, path="x.py", kind="content", hunk_count=3, resolutions=[
        {"tier": "resolver"}, {"tier": "llm"}])  # the third hunk has no decision yet
    ConflictFile.objects.create(attempt=attempt, path="y.py", kind="content", hunk_count=2, resolutions=[
        {"tier": "human"}, {"tier": ""}])
    for kind, payload in (("task.ready", {"why": "lease expired"}), ("task.ready", {"why": "lease expired"}),
                          ("task.ready", {"from": "pending"}), ("join.synthesizing", {"why": "its merger was lost"}),
                          ("merge.recovered", {"outcome": "merged"}), ("publish.failed", {"error": "rejected"}),
                          ("task.log", {"why": "lease expired"})):
        Event.record(first, kind, payload)


def test_each_figure_is_counted_from_the_rows(metrics_on, client):
    _rows()
    m = scrape(client, Authorization=f"Bearer {TOKEN}")

    assert m[("dagmerge_tickets", (("state", "running"),))] == 1
    assert m[("dagmerge_tickets", (("state", "done"),))] == 1
    assert m[("dagmerge_tickets", (("state", "failed"),))] == 0  # every state has a series
    assert m[("dagmerge_tasks", (("state", "succeeded"),))] == 2
    assert m[("dagmerge_tasks", (("state", "ready"),))] == 1
    assert m[("dagmerge_joins", (("state", "synthesizing"),))] == 1
    assert m[("dagmerge_ready_tasks", ())] == 1
    assert m[("dagmerge_synthesizing_joins", ())] == 1
    assert m[("dagmerge_tasks_waiting_on_claims", ())] == 1
    assert 0 <= m[("dagmerge_oldest_ready_task_age_seconds", ())] < 60

    succeeded = (("outcome", "succeeded"),)
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "1.0"), *succeeded))] == 0
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "5.0"), *succeeded))] == 1  # A: 3 s
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "1800.0"), *succeeded))] == 1
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "3600.0"), *succeeded))] == 2  # E: 2000 s
    assert m[("dagmerge_task_duration_seconds_count", succeeded)] == 2
    assert m[("dagmerge_task_duration_seconds_sum", succeeded)] == pytest.approx(2003, abs=0.01)
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "60.0"), ("outcome", "failed")))] == 0
    assert m[("dagmerge_task_duration_seconds_bucket", (("le", "300.0"), ("outcome", "failed")))] == 1

    merged = (("outcome", "merged"),)
    assert m[("dagmerge_merge_duration_seconds_bucket", (("le", "0.05"), *merged))] == 1
    assert m[("dagmerge_merge_duration_seconds_bucket", (("le", "0.25"), *merged))] == 1
    assert m[("dagmerge_merge_duration_seconds_bucket", (("le", "0.5"), *merged))] == 2
    assert m[("dagmerge_merge_duration_seconds_sum", merged)] == pytest.approx(0.34)
    assert m[("dagmerge_merge_duration_seconds_count", (("outcome", "conflicted"),))] == 1
    assert ("dagmerge_merge_duration_seconds_count", (("outcome", "running"),)) not in m  # not ended yet

    hunks = {tier: m[("dagmerge_conflict_hunks_total", (("tier", tier),))] for tier in ("resolver", "llm", "human",
                                                                                        "open")}
    assert hunks == {"resolver": 1, "llm": 1, "human": 1, "open": 2}
    assert m[("dagmerge_recoveries_total", (("what", "task"),))] == 2
    assert m[("dagmerge_recoveries_total", (("what", "join"),))] == 1
    assert m[("dagmerge_recoveries_total", (("what", "merge"),))] == 1
    assert m[("dagmerge_publish_failures_total", ())] == 1
    assert m[("dagmerge_task_reruns_total", ())] == 3  # B ran 3 times, E twice
    assert m[("dagmerge_llm_cost_usd_total", ())] == pytest.approx(1.75)
    assert m[("dagmerge_llm_invocations_total", ())] == 4


def test_a_scrape_costs_the_same_queries_with_few_rows_or_many(metrics_on, client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(client, Authorization=f"Bearer {TOKEN}")
        return len(captured)

    _rows()
    few = queries()
    for _ in range(5):
        _rows()
    assert queries() == few <= 15
