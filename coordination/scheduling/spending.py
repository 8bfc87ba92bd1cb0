"""What a ticket spent on the LLM, summed from its merges and agent tasks."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from coordination.models import Task, Ticket
from merges.models import MergeAttempt


def charge_llm(ticket_id: int) -> None:
    """The ticket's LLM spend, summed from what its merges and agent tasks recorded (idempotent)."""
    spent = MergeAttempt.objects.filter(ticket_id=ticket_id).aggregate(n=Sum("llm_invocations"),
                                                                       usd=Sum("llm_cost_usd"))
    invocations, usd = spent["n"] or 0, spent["usd"] or Decimal(0)
    # Only agent tasks spend: reading every task's result after every merge made a ticket cost O(N²).
    agent_tasks = Task.objects.filter(ticket_id=ticket_id, executor="claude").exclude(result=None)
    for result in agent_tasks.values_list("result", flat=True):
        assert result is not None  # excluded by the query
        invocations += result.get("llm_invocations", 0)
        usd += Decimal(str(result.get("cost_usd", 0)))
    Ticket.objects.filter(pk=ticket_id).update(llm_invocations=invocations, llm_cost_usd=usd)
