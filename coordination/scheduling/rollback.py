"""Undoing a merged attempt: the ticket branch goes back to the attempt's recovery point."""

from __future__ import annotations

import logging

from django.db import transaction

from coordination.models import Event, Ticket
from coordination.running import workspace
from coordination.scheduling.leases import ticket_merge_lease
from coordination.scheduling.publishing import publish_ticket
from merges.models import MergeAttempt
from merges.recovery import roll_back

log = logging.getLogger(__name__)

def rollback_attempt(attempt_id: int, user=None) -> MergeAttempt:
    """Undo a merged attempt: the ticket branch goes back to its recovery point (CAS), the sources'
    work is no longer counted as landed, and the source repository is told. Raises CannotRollBack."""
    attempt = MergeAttempt.objects.select_related("ticket").get(pk=attempt_id)
    ticket = attempt.ticket
    with ticket_merge_lease(ticket.pk):
        attempt = roll_back(workspace.clone_git(ticket.repository_id), attempt_id, user)
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
            ticket.head_sha = attempt.base_sha
            ticket.save(update_fields=["head_sha", "updated_at"])
            ticket.tasks.filter(key__in=[i["name"] for i in attempt.incoming]).update(landed=False)
            Event.record(ticket, "merge.rolled_back", {"attempt_id": attempt.pk, "sha": attempt.base_sha,
                                                       "by": user.get_username() if user else "cli"})
            Event.record(ticket, "ticket.head", {"sha": attempt.base_sha})
    publish_ticket(ticket.pk)
    return attempt
