"""A ticket's LLM budget: the agent settings and what is left to spend (what was spent: ``spending``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from merges.engine.llm import Budget, LLMSettings

if TYPE_CHECKING:
    from coordination.models import Ticket


def llm_settings() -> LLMSettings:
    return LLMSettings(model=settings.DAGMERGE_LLM_MODEL, max_turns=settings.DAGMERGE_LLM_MAX_TURNS,
                       timeout_s=settings.DAGMERGE_LLM_TIMEOUT, max_retries=settings.DAGMERGE_LLM_MAX_RETRIES,
                       cli_path=settings.DAGMERGE_CLAUDE_CLI)


def ticket_budget(ticket: Ticket) -> Budget:
    return Budget(invocations=max(ticket.llm_max_invocations - ticket.llm_invocations, 0),
                  usd=max(float(ticket.llm_max_usd - ticket.llm_cost_usd), 0.0))
