"""Per-ticket API tokens for tasks that discover work: derived from the secret key, never stored.

A token is an HMAC of the ticket's id and its ``token_nonce``: it opens that ticket and no other, and
rotating the nonce (``dagmerge revoke-token``) revokes every token handed out before. A token also expires
when its ticket ends; the caller checks that, as it knows the ticket's status.
"""

from __future__ import annotations

import secrets

from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "dagmerge.ticket-api-token"


def new_token_nonce() -> str:
    return secrets.token_hex(16)


def ticket_token(ticket_id: int, nonce: str) -> str:
    return salted_hmac(SALT, f"ticket:{ticket_id}:{nonce}", algorithm="sha256").hexdigest()


def token_grants(ticket_id: int, nonce: str, token: str) -> bool:
    return constant_time_compare(ticket_token(ticket_id, nonce), token)
