"""Prometheus metrics at ``/metrics``, read from the database when scraped.

Every figure comes from the rows (tickets, tasks, joins, merge attempts, conflict files, events), so the
work of every process on every host is counted, and a scrape costs a fixed number of queries whatever
the number of rows: counts are grouped and histograms bucketed by the database. Off unless
DAGMERGE_METRICS is set; a signed-in viewer may read it, and so may a scraper sending
DAGMERGE_METRICS_TOKEN as a bearer token.

Counters (``*_total``) are sums over rows that are only ever added, so they only grow while nothing is
deleted; deleting tickets lowers them, which Prometheus reads as a counter reset.
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from coordination.domain import states
from coordination.models import Event, Join, Task, Ticket
from coordination.web.permissions import can_view
from merges.models import ConflictFile, MergeAttempt

TASK_BUCKETS_S = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200)
MERGE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Events counted, by what they mean (the sweep's recoveries: coordination/jobs/sweeping.py, landing.py).
RECOVERIES = {
    "task": Q(kind="task.ready", payload__why="lease expired"),  # its worker stopped renewing the lease
    "join": Q(kind="join.synthesizing", payload__why="its merger was lost"),
    "merge": Q(kind="merge.recovered"),  # an attempt left running by a dead merger, completed or redone
}
PUBLISH_FAILED = Q(kind="publish.failed")


class DatabaseCollector:
    """A custom collector: each scrape asks the database (a dozen queries, none per row)."""

    def collect(self) -> Iterator[Metric]:
        yield _by_state("dagmerge_tickets", "Tickets by state.", Ticket, states.TICKET.states)
        yield _by_state("dagmerge_tasks", "Tasks by state.", Task, states.TASK.states)
        yield _by_state("dagmerge_joins", "Joins by state.", Join, states.JOIN.states)
        yield from _queues()
        yield _task_durations()
        yield _merge_durations()
        yield _conflict_hunks()
        yield from _recoveries()
        yield from _spend()


def _by_state(name: str, documentation: str, model, all_states: Sequence[str]) -> GaugeMetricFamily:
    counts = dict(model.objects.order_by().values_list("status").annotate(n=Count("pk")))
    family = GaugeMetricFamily(name, documentation, labels=["state"])
    for state in all_states:  # every state, zero included: an alert on a missing series never fires
        family.add_metric([state], counts.get(state, 0))
    return family


def _queues() -> Iterator[Metric]:
    ready = Task.objects.filter(status="ready").aggregate(n=Count("pk"), oldest=Min("updated_at"))
    yield GaugeMetricFamily("dagmerge_ready_tasks", "Tasks ready and not yet taken by a worker (the queue).",
                            value=ready["n"])
    age = (timezone.now() - ready["oldest"]).total_seconds() if ready["oldest"] else 0.0
    yield GaugeMetricFamily("dagmerge_oldest_ready_task_age_seconds",
                            "How long the oldest ready task has waited for a worker.", value=max(age, 0.0))
    yield GaugeMetricFamily("dagmerge_synthesizing_joins", "Joins whose sources are done, waiting for their merge.",
                            value=Join.objects.filter(status="synthesizing").count())
    yield GaugeMetricFamily("dagmerge_tasks_waiting_on_claims",
                            "Pending tasks whose parents are done, waiting for another task's file claim.",
                            value=Task.objects.filter(status="pending").exclude(waiting_on="").count())


def _histogram(name: str, documentation: str, rows: QuerySet, within: Callable[[float], Q],
               buckets: Sequence[float], total: Sum, seconds: Callable[[Any], float]) -> HistogramMetricFamily:
    """Bucket counts computed by the database, by outcome (the rows' status): one query."""
    counted = rows.order_by().values("status").annotate(
        n=Count("pk"), total=total, **{f"le{i}": Count("pk", filter=within(bound)) for i, bound in enumerate(buckets)})
    family = HistogramMetricFamily(name, documentation, labels=["outcome"])
    for row in counted:
        family.add_metric([row["status"]], [(floatToGoString(bound), row[f"le{i}"]) for i, bound in enumerate(buckets)]
                          + [("+Inf", row["n"])], sum_value=seconds(row["total"]) if row["total"] else 0.0)
    return family


def _task_durations() -> HistogramMetricFamily:
    finished = Task.objects.filter(status__in=("succeeded", "failed"), started_at__isnull=False,
                                   finished_at__isnull=False)
    return _histogram("dagmerge_task_duration_seconds", "Task runs, claimed to finished, by outcome.", finished,
                      lambda s: Q(finished_at__lte=F("started_at") + timedelta(seconds=s)), TASK_BUCKETS_S,
                      Sum(F("finished_at") - F("started_at")), timedelta.total_seconds)


def _merge_durations() -> HistogramMetricFamily:
    ended = MergeAttempt.objects.exclude(status="running")
    return _histogram("dagmerge_merge_duration_seconds", "Merge attempts by outcome (the engine's time).", ended,
                      lambda s: Q(duration_ms__lte=s * 1000), MERGE_BUCKETS_S, Sum("duration_ms"),
                      lambda ms: ms / 1000)


def _conflict_hunks() -> CounterMetricFamily:
    """Per hunk, the tier that settled it (resolver, llm, human) or open; read from each file's decisions
    (one query, streamed: JSON lists are summed here, the same way on SQLite and PostgreSQL)."""
    tiers: Counter[str] = Counter()
    for resolutions, hunks in ConflictFile.objects.values_list("resolutions", "hunk_count").iterator(2000):
        decided = [r.get("tier") or "open" for r in (resolutions or [])[:hunks]]
        tiers.update(decided + ["open"] * (hunks - len(decided)))
    family = CounterMetricFamily("dagmerge_conflict_hunks", "Conflict hunks by the tier that settled them.",
                                 labels=["tier"])
    for tier in sorted({"resolver", "llm", "human", "open", *tiers}):
        family.add_metric([tier], tiers[tier])
    return family


def _recoveries() -> Iterator[Metric]:
    counts = Event.objects.filter(kind__in=Event.COUNTED_KINDS).aggregate(
        publish=Count("pk", filter=PUBLISH_FAILED), **{what: Count("pk", filter=q) for what, q in RECOVERIES.items()})
    recovered = CounterMetricFamily("dagmerge_recoveries", "Work the sweep took back from a worker that stopped.",
                                    labels=["what"])
    for what in RECOVERIES:
        recovered.add_metric([what], counts[what])
    yield recovered
    yield CounterMetricFamily("dagmerge_publish_failures", "Pushes of a ticket branch to its source that failed.",
                              value=counts["publish"])
    reruns = Task.objects.filter(attempts__gt=1).aggregate(n=Sum(F("attempts") - 1))["n"] or 0
    yield CounterMetricFamily("dagmerge_task_reruns", "Task runs beyond each task's first (recovered or retried).",
                              value=reruns)


def _spend() -> Iterator[Metric]:
    spent = Ticket.objects.aggregate(usd=Sum("llm_cost_usd"), calls=Sum("llm_invocations"))
    yield CounterMetricFamily("dagmerge_llm_cost_usd", "LLM spend of all tickets (merges and agent tasks), USD.",
                              value=float(spent["usd"] or 0))
    yield CounterMetricFamily("dagmerge_llm_invocations", "LLM invocations of all tickets.", value=spent["calls"] or 0)


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(DatabaseCollector())


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.DAGMERGE_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer "):
        return hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode())
    return can_view(request.user)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The exposition: 404 while metrics are off, 401 without a login or the token, 403 for a signed-in
    user who may not view."""
    if not settings.DAGMERGE_METRICS:
        raise Http404("metrics are off (DAGMERGE_METRICS)")
    if not _may_scrape(request):
        if request.user.is_authenticated and "Authorization" not in request.headers:
            return HttpResponse("viewers only\n", status=403, content_type="text/plain")
        return HttpResponse("sign in, or send the metrics token as a bearer token\n", status=401,
                            content_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="dagmerge"'})
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
