"""Reserving a ticket's LLM budget before an agent runs, and settling it after.

Parallel agents (Claude tasks, and the merge agent tier) must not each see the whole remaining budget,
or a ticket could spend N × ``llm_max_usd``. A run reserves a share of what is left — spent and reserved
by others both count — under the ticket's row lock, runs with exactly that as its budget, and on settling
moves what it really spent from "reserved" to "spent" in one update. ``charge_llm`` later recomputes the
spent totals from the rows that recorded them, so the two agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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


class BudgetReservedOnUse(Budget):
    """The budget of a merge: reserved when the agent tier first asks for it, which most merges (clean,
    or settled by git and the resolvers) never do; reserving it up front cost each merge a transaction."""

    _reserve: Callable[[], Budget]

    def __init__(self, reserve: Callable[[], Budget]):
        super().__init__()
        object.__setattr__(self, "_reserve", reserve)  # Budget is frozen

    def allows(self, invocations_used: int = 0, usd_used: float = 0.0) -> bool:
        return self._reserve().allows(invocations_used, usd_used)

    def usd_left(self, usd_used: float) -> float | None:
        return self._reserve().usd_left(usd_used)


@dataclass
class ReservationOnUse:
    """``reserved_on_use``'s: ``budget`` reserves a share on first use, ``spend`` settles what was used."""

    ticket_id: int
    stack: ExitStack
    reservation: Reservation | None = None
    budget: Budget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = BudgetReservedOnUse(lambda: self._reserved().budget)

    def _reserved(self) -> Reservation:
        if self.reservation is None:
            self.reservation = self.stack.enter_context(reserved_budget(self.ticket_id))
        return self.reservation

    def spend(self, invocations: int, usd: float) -> None:
        if self.reservation is not None:  # nothing reserved: the agent never ran, nothing was spent
            self.reservation.spend(invocations, usd)


@contextmanager
def reserved_on_use(ticket_id: int) -> Iterator[ReservationOnUse]:
    """``reserved_budget``, reserved only if the run asks its budget (settled on exit, as there)."""
    with ExitStack() as stack:
        yield ReservationOnUse(ticket_id, stack)
