"""Who may use a ticket's API: the discovered-work token, checked and revoked.

A running task holds its ticket's token (``DAGMERGE_TOKEN``). It opens that ticket only; it stops working
when the ticket ends (done or cancelled: a failed or rolled-back ticket can go back to work, so its token
lives on, and a done ticket that is rolled back gets it back), and at once when someone revokes it (say a
task printed it to a log others read). Tasks started after a revocation get the new token.
"""

from __future__ import annotations

from django.db import transaction

from coordination.domain import states
from coordination.domain.tokens import new_token_nonce, token_grants
from coordination.models import Event, Ticket


class TokenRefused(Exception):
    """The token does not open the ticket (wrong, another ticket's, revoked) or has expired."""


def check_ticket_token(ticket_id: int, token: str) -> None:
    """Raises TokenRefused unless ``token`` is the live token of ticket ``ticket_id``.

    An unknown ticket and a wrong token get the same answer: the API does not say which tickets exist.
    """
    row = Ticket.objects.filter(pk=ticket_id).values_list("token_nonce", "status").first()
    if row is None or not token_grants(ticket_id, row[0], token):
        raise TokenRefused(f"this token does not open ticket {ticket_id}")
    if row[1] in states.TICKET_ENDED:
        raise TokenRefused(f"ticket {ticket_id} is {row[1]}: its token has expired")


def revoke_ticket_token(ticket_id: int, user=None) -> None:
    """Rotate the ticket's nonce, so no token handed out before opens it, and record who did it."""
    with transaction.atomic():
        ticket = Ticket.objects.get(pk=ticket_id)
        Ticket.objects.filter(pk=ticket.pk).update(token_nonce=new_token_nonce())
        Event.record(ticket, "ticket.token_revoked", {"by": user.get_username() if user is not None else "cli"})
