"""Parallel agents share a ticket's LLM budget: each reserves a share of what is left, none sees it all."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from coordination.models import Ticket
from coordination.running.llm_budget import reserved_budget, reserved_on_use
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db


def test_two_agents_running_at_once_together_stay_within_the_ticket_budget():
    ticket = make_ticket(llm_max_usd=Decimal("4"), llm_max_invocations=8)
    with reserved_budget(ticket.pk) as first, reserved_budget(ticket.pk) as second:
        assert first.budget.usd == 2.0 and second.budget.usd == 1.0  # the second sees what the first left
        assert first.budget.invocations == 4 and second.budget.invocations == 2
        assert first.budget.usd + second.budget.usd <= 4
        held = Ticket.objects.get(pk=ticket.pk)
        assert held.llm_reserved_usd == Decimal("3") and held.llm_reserved_invocations == 6
        first.spend(1, 1.25)
        second.spend(1, 0.5)
    settled = Ticket.objects.get(pk=ticket.pk)
    assert settled.llm_reserved_usd == 0 and settled.llm_reserved_invocations == 0
    assert settled.llm_cost_usd == Decimal("1.75") and settled.llm_invocations == 2


def test_an_exhausted_budget_reserves_nothing_and_a_failed_run_gives_its_reservation_back():
    spent = make_ticket(llm_max_usd=Decimal("1"), llm_cost_usd=Decimal("1"))
    with reserved_budget(spent.pk) as nothing:
        assert not nothing.budget.allows()
    ticket = make_ticket(title="other", repository=spent.repository, llm_max_usd=Decimal("2"))
    with pytest.raises(RuntimeError), reserved_budget(ticket.pk):
        raise RuntimeError("the agent crashed")
    after = Ticket.objects.get(pk=ticket.pk)
    assert after.llm_reserved_usd == 0 and after.llm_cost_usd == 0


def test_a_merge_reserves_its_share_only_when_the_agent_tier_asks_for_its_budget():
    ticket = make_ticket(llm_max_usd=Decimal("4"), llm_max_invocations=8)
    with CaptureQueriesContext(connection) as queries, reserved_on_use(ticket.pk) as clean:
        clean.spend(0, 0.0)  # settled by git: the budget was never asked for
    assert len(queries) == 0

    with reserved_on_use(ticket.pk) as merge:
        assert merge.budget.allows() and merge.budget.usd_left(0.5) == 1.5
        held = Ticket.objects.get(pk=ticket.pk)
        assert held.llm_reserved_usd == Decimal("2") and held.llm_reserved_invocations == 4  # reserved once
        merge.spend(1, 0.75)
    settled = Ticket.objects.get(pk=ticket.pk)
    assert settled.llm_reserved_usd == 0 and settled.llm_cost_usd == Decimal("0.75") and settled.llm_invocations == 1
