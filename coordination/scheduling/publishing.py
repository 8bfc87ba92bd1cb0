"""Publishing ``ticket/<id>`` back to the source repository after the ticket head moves.

A failed push is not the end: the ticket records it and when to try again (backing off from 5 s to
10 min), and the sweep hands the publish job out again until the source shows the head.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from coordination.models import Event, Ticket
from coordination.running import workspace
from merges.engine.git import GitError

log = logging.getLogger(__name__)

FIRST_RETRY_S, LAST_RETRY_S = 5, 600


def publish_ticket(ticket_id: int) -> None:
    """Push the ticket's head to the source, leased on what was pushed last; idempotent."""
    ticket = Ticket.objects.select_related("repository").get(pk=ticket_id)
    head, last = ticket.head_sha, ticket.published_sha
    if last == head:
        return
    try:
        workspace.publish(ticket.repository_id, ticket.repository.url_or_path, ticket.ref, head, last)
    except GitError as exc:
        if _source_shows(ticket, head):  # another publish of the same head got there first
            _published(ticket, last, head)
            return
        delay = min(FIRST_RETRY_S * 2 ** ticket.publish_failures, LAST_RETRY_S)
        Ticket.objects.filter(pk=ticket_id).update(publish_failures=F("publish_failures") + 1,
                                                   publish_retry_at=timezone.now() + timedelta(seconds=delay))
        Event.record(ticket, "publish.failed", {"error": exc.stderr or str(exc), "sha": head, "retry_in_s": delay})
        return
    _published(ticket, last, head)


def _published(ticket: Ticket, last: str, head: str) -> None:
    if Ticket.objects.filter(pk=ticket.pk, published_sha=last).update(published_sha=head, publish_failures=0,
                                                                      publish_retry_at=None):
        Event.record(ticket, "ticket.published", {"sha": head})


def _source_shows(ticket: Ticket, sha: str) -> bool:
    try:
        return workspace.remote_branch_sha(ticket.repository.url_or_path, ticket.branch) == sha
    except workspace.RepositoryError:
        return False
