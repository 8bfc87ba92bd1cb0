"""The periodic sweep: work whose worker died, or whose message was lost, is handed out again."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from coordination.domain import dispatch
from coordination.domain.dispatch import Job
from coordination.models import Join, Task, Ticket

STALE_AFTER = timedelta(minutes=2)


def sweep() -> dict[str, int]:
    now = timezone.now()
    requeued = 0
    for task in Task.objects.filter(status__in=("claimed", "running"), lease_expires_at__lt=now):
        with transaction.atomic():
            # Re-checked under the row lock: the heartbeat may have renewed it meanwhile.
            task = Task.objects.select_for_update().select_related("ticket").get(pk=task.pk)
            if task.status in ("claimed", "running") and task.lease_expires_at and task.lease_expires_at < now:
                if task.status == "claimed":
                    task.transition("ready", lease_owner="", lease_expires_at=None)
                else:
                    task.transition("ready", lease_owner="", lease_expires_at=None,
                                    error="its worker stopped renewing the lease; re-queued")
                task.claims.filter(released_at=None).update(released_at=now)
                dispatch.submit(Job.RUN_TASK, task.pk)
                requeued += 1
    stale = now - STALE_AFTER
    redispatched = 0
    for task in Task.objects.filter(status="ready", updated_at__lt=stale):
        dispatch.submit(Job.RUN_TASK, task.pk)
        redispatched += 1
    for task in Task.objects.filter(status="succeeded", landed=False, source_of_joins=None, updated_at__lt=stale):
        dispatch.submit(Job.LAND_TASK, task.pk)
        redispatched += 1
    for join in Join.objects.filter(status="synthesizing", updated_at__lt=stale):
        dispatch.submit(Job.CONVERGE_JOIN, join.pk)
        redispatched += 1
    for ticket in Ticket.objects.filter(status__in=("pending", "running"), updated_at__lt=stale):
        dispatch.submit(Job.ADVANCE, ticket.pk)
        redispatched += 1
    return {"requeued": requeued, "redispatched": redispatched}
