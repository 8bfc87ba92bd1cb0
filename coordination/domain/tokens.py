"""Per-ticket API tokens for tasks that discover work: derived from the secret key, never stored."""

from __future__ import annotations

from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "dagmerge.ticket-api-token"


def ticket_token(ticket_id: int) -> str:
    return salted_hmac(SALT, f"ticket:{ticket_id}", algorithm="sha256").hexdigest()


def token_grants(ticket_id: int, token: str) -> bool:
    return constant_time_compare(ticket_token(ticket_id), token)
