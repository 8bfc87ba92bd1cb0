"""Reserving a ticket's LLM budget before an agent runs, and settling it after.

Parallel agents (Claude tasks, and the merge agent tier) must not each see the whole remaining budget,
or a ticket could spend N × ``llm_max_usd``. A run reserves a share of what is left — spent and reserved
by others both count — under the ticket's row lock, runs with exactly that as its budget, and on settling
moves what it really spent from "reserved" to "spent" in one update. ``charge_llm`` later recomputes the
spent totals from the rows that recorded them, so the two agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F

from coordination.models import Ticket
from merges.engine.llm import Budget

SHARE = Decimal("0.5")  # a run reserves half of what is left: a second run in parallel still gets a share


@dataclass
class Reservation:
    ticket_id: int
    budget: Budget
    invocations: int
    usd: Decimal
    spent_invocations: int = 0
    spent_usd: Decimal = Decimal(0)

    def spend(self, invocations: int, usd: float) -> None:
        """What the run really spent (never more than reserved: the agent was given the reservation)."""
        self.spent_invocations, self.spent_usd = invocations, Decimal(str(usd))


@contextmanager
def reserved_budget(ticket_id: int) -> Iterator[Reservation]:
    """Reserve a share of the ticket's remaining LLM budget for one agent run; settle it on exit."""
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        usd_left = max(ticket.llm_max_usd - ticket.llm_cost_usd - ticket.llm_reserved_usd, Decimal(0))
        calls_left = max(ticket.llm_max_invocations - ticket.llm_invocations - ticket.llm_reserved_invocations, 0)
        usd = (usd_left * SHARE).quantize(Decimal("0.0001"))
        calls = max(1, int(calls_left * SHARE)) if calls_left and usd > 0 else 0
        usd = usd if calls else Decimal(0)
        Ticket.objects.filter(pk=ticket_id).update(llm_reserved_usd=F("llm_reserved_usd") + usd,
                                                   llm_reserved_invocations=F("llm_reserved_invocations") + calls)
    reservation = Reservation(ticket_id, Budget(invocations=calls, usd=float(usd)), calls, usd)
    try:
        yield reservation
    finally:
        Ticket.objects.filter(pk=ticket_id).update(
            llm_reserved_usd=F("llm_reserved_usd") - reservation.usd,
            llm_reserved_invocations=F("llm_reserved_invocations") - reservation.invocations,
            llm_cost_usd=F("llm_cost_usd") + reservation.spent_usd,
            llm_invocations=F("llm_invocations") + reservation.spent_invocations,
        )
