import time
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from tests import factories
from coordination import dashboard
pytestmark = pytest.mark.django_db

def test_perf(bob_client):
    ticket = factories.make_ticket("Big")
    parents_of = {f"r{i}": [] for i in range(10)}
    previous = list(parents_of)
    for layer in range(10):
        keys = [f"t{layer}-{i}" for i in range(99)]
        for i, key in enumerate(keys):
            parents_of[key] = [previous[i % len(previous)], previous[(i + 1) % len(previous)]]
        previous = keys
    factories.make_dag(ticket, parents_of)
    url = reverse("coordination:ticket_detail", args=[ticket.pk])
    bob_client.get(url)
    with CaptureQueriesContext(connection) as q:
        t = time.perf_counter(); html = bob_client.get(url).content; print("page", time.perf_counter() - t, len(html), len(q))
    for x in q.captured_queries: print(x["time"], x["sql"][:150])
    t = time.perf_counter(); svg = dashboard._dag_svg(ticket.pk); print("dag", time.perf_counter() - t, len(svg))
    v = dashboard.LiveView(ticket.pk)
    t = time.perf_counter(); s = v.connect(None); print("snapshot", time.perf_counter() - t, len(s))
