"""A ticket's LLM budget: the agent settings, what is left to spend, and what was spent."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import Sum

from coordination.models import Task, Ticket
from merges.engine.llm import Budget, LLMSettings
from merges.models import MergeAttempt


def llm_settings() -> LLMSettings:
    return LLMSettings(model=settings.DAGMERGE_LLM_MODEL, max_turns=settings.DAGMERGE_LLM_MAX_TURNS,
                       timeout_s=settings.DAGMERGE_LLM_TIMEOUT, max_retries=settings.DAGMERGE_LLM_MAX_RETRIES,
                       cli_path=settings.DAGMERGE_CLAUDE_CLI)


def ticket_budget(ticket: Ticket) -> Budget:
    return Budget(invocations=max(ticket.llm_max_invocations - ticket.llm_invocations, 0),
                  usd=max(float(ticket.llm_max_usd - ticket.llm_cost_usd), 0.0))


def charge_llm(ticket_id: int) -> None:
    """The ticket's LLM spend, summed from what its merges and agent tasks recorded (idempotent)."""
    spent = MergeAttempt.objects.filter(ticket_id=ticket_id).aggregate(n=Sum("llm_invocations"),
                                                                       usd=Sum("llm_cost_usd"))
    invocations, usd = spent["n"] or 0, spent["usd"] or Decimal(0)
    for result in Task.objects.filter(ticket_id=ticket_id).exclude(result=None).values_list("result", flat=True):
        invocations += result.get("llm_invocations", 0)
        usd += Decimal(str(result.get("cost_usd", 0)))
    Ticket.objects.filter(pk=ticket_id).update(llm_invocations=invocations, llm_cost_usd=usd)
