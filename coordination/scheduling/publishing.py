"""Publishing ``ticket/<id>`` back to the source repository after the ticket head moves."""

from __future__ import annotations

import logging

from coordination.models import Event, Ticket
from coordination.running import workspace
from merges.engine.git import GitError

log = logging.getLogger(__name__)

def publish_ticket(ticket_id: int) -> None:
    """Push ticket/<id> back to the source repository, leased on what was pushed last."""
    ticket = Ticket.objects.select_related("repository").get(pk=ticket_id)
    if ticket.published_sha == ticket.head_sha:
        return
    try:
        workspace.publish(ticket.repository_id, ticket.repository.url_or_path, ticket.ref, ticket.head_sha,
                          ticket.published_sha)
    except GitError as exc:
        Event.record(ticket, "publish.failed", {"error": exc.stderr or str(exc)})
        return
    Ticket.objects.filter(pk=ticket_id).update(published_sha=ticket.head_sha)
    Event.record(ticket, "ticket.published", {"sha": ticket.head_sha})
