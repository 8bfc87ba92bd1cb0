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
        pushed_over = _push(ticket, head, last)
    except GitError as exc:
        if _source_shows(ticket, head):  # another publish of the same head got there first
            _published(ticket, {last}, head)
            return
        delay = min(FIRST_RETRY_S * 2 ** ticket.publish_failures, LAST_RETRY_S)
        Ticket.objects.filter(pk=ticket_id).update(publish_failures=F("publish_failures") + 1,
                                                   publish_retry_at=timezone.now() + timedelta(seconds=delay))
        Event.record(ticket, "publish.failed", {"error": exc.stderr or str(exc), "sha": head, "retry_in_s": delay})
        return
    _published(ticket, {last, pushed_over}, head)


def _push(ticket: Ticket, head: str, last: str) -> str:
    """Push ``head`` over ``last``; returns what it pushed over. When another publish of the ticket pushed
    an older head meanwhile (two landings' pushes crossing), the branch holds nothing ``head`` lacks: pushed
    over that instead. Anything else on the branch (someone else's commit) refuses the push."""
    try:
        workspace.publish(ticket.repository_id, ticket.repository.url_or_path, ticket.ref, head, last)
        return last
    except GitError:
        shown = _source_sha(ticket)
        if not shown or shown == last or not _holds(ticket, head, shown):
            raise
    workspace.publish(ticket.repository_id, ticket.repository.url_or_path, ticket.ref, head, shown)
    return shown


def _holds(ticket: Ticket, head: str, sha: str) -> bool:
    try:
        return workspace.clone_git(ticket.repository_id).is_ancestor(sha, head)
    except GitError:  # not in the clone: not a head dagmerge made
        return False


def _published(ticket: Ticket, over: set[str], head: str) -> None:
    """Recorded unless a later publish recorded a newer head first (it pushed over what this one knew)."""
    if Ticket.objects.filter(pk=ticket.pk, published_sha__in=over).update(published_sha=head, publish_failures=0,
                                                                          publish_retry_at=None):
        Event.record(ticket, "ticket.published", {"sha": head})


def _source_shows(ticket: Ticket, sha: str) -> bool:
    return _source_sha(ticket) == sha


def _source_sha(ticket: Ticket) -> str:
    """Where the ticket branch is in the source ('' when it cannot be read)."""
    try:
        return workspace.remote_branch_sha(ticket.repository.url_or_path, ticket.branch)
    except workspace.RepositoryError:
        return ""
