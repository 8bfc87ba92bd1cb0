"""The periodic sweep: every in-flight state whose lease lapsed is recovered, every lost message resent.

Each in-flight state has an owner and a lease (see ``running.leases``); a worker that dies stops
renewing it. The sweep finds what it left and returns it to the step before:

- a task ``claimed`` / ``running`` with an expired lease goes back to ``ready`` — or fails once it has
  been run ``max_attempts`` times ("worker lost 3 times"), so a task that kills its worker (OOM) is not
  re-run for ever;
- a merge attempt ``running`` while its ticket's merge lease is free or expired goes to
  ``recover_merge`` (completed if its ref moved, its review action re-run, or merged again), sent once
  per lapse of that lease;
- a join ``merging`` with no attempt running or merged and no merge lease goes back to ``synthesizing``;
- a ticket head not yet published is pushed again once its back-off has passed.

Every move is a conditional update re-checked under the row lock; the sweep itself holds no lease
and may run on several hosts at once.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from coordination.domain import dispatch
from coordination.domain.dispatch import Job
from coordination.models import Join, Task, Ticket
from merges.models import MergeAttempt

WORKING = ("running", "merging", "awaiting_review")  # tickets that land work (and may hold a merge)
# A merging join's attempt in one of these is ``recover_merge``'s: running, or merged but never recorded
# (its merger died after the ref moved). Handed out again as well, the recovery found it synthesizing.
MERGE_UNDER_WAY = ("running", "merged")


def sweep() -> dict[str, int]:
    now = timezone.now()
    counts = {"requeued": _recover_tasks(now), "recovered_merges": 0, "recovered_joins": 0, "redispatched": 0,
              "republished": 0}
    lease = timedelta(seconds=settings.DAGMERGE_LEASE_SECONDS)
    unlocked = Q(ticket__merge_lock_owner="") | Q(ticket__merge_lock_expires_at__lt=now)
    in_flight = Q(status="running", started_at__lt=now - lease) | Q(status="merged", pending_action__has_key="kind")
    lapsed = list(MergeAttempt.objects.filter(unlocked, in_flight).values_list("pk", flat=True))
    unrecorded = _unrecorded(Q(merge_lock_owner="") | Q(merge_lock_expires_at__lt=now), now - lease)
    counts["recovered_merges"] = _send_recoveries(MergeAttempt.objects.filter(pk__in=[*lapsed, *unrecorded]), now)
    for join in Join.objects.filter(unlocked, status="merging", updated_at__lt=now - lease).exclude(
            merge_attempts__status__in=MERGE_UNDER_WAY):
        counts["recovered_joins"] += _recover_join(join.pk)
    # A queued state older than this lost its message (a worker died holding it: the filesystem broker
    # deletes a message when it is fetched, Redis redelivers only after visibility_timeout): send it again.
    stale = now - timedelta(seconds=settings.DAGMERGE_RESEND_SECONDS)
    counts["redispatched"] += _resend(Job.RUN_TASK, Task.objects.filter(status="ready", updated_at__lt=stale), now)
    counts["redispatched"] += _resend(Job.LAND_TASK, Task.objects.filter(
        status="succeeded", landed=False, source_of_joins=None, updated_at__lt=stale,
        ticket__status__in=("running", "merging")), now)
    counts["redispatched"] += _resend(Job.CONVERGE_JOIN, Join.objects.filter(status="synthesizing",
                                                                             updated_at__lt=stale), now)
    counts["redispatched"] += _resend(Job.ADVANCE, Ticket.objects.filter(status__in=("pending", "running"),
                                                                         updated_at__lt=stale), now)
    counts["republished"] = _resend(Job.PUBLISH, Ticket.objects.exclude(published_sha=F("head_sha")).filter(
        Q(publish_retry_at=None, updated_at__lt=stale) | Q(publish_retry_at__lt=now)), now)
    return counts


def _resend(job: Job, rows: QuerySet, now) -> int:
    """Send ``job`` again for each row, and mark the rows as sent now: a job still queued behind a long
    backlog is sent again only after another whole delay, not by every sweep (which piled duplicates
    into the queue faster than workers drained them)."""
    ids = list(rows.values_list("pk", flat=True).distinct())
    for pk in ids:
        dispatch.submit(job, pk)
    rows.model.objects.filter(pk__in=ids).update(updated_at=now)
    return len(ids)


def _recover_tasks(now) -> int:
    requeued = 0
    for task_id in Task.objects.filter(status__in=("claimed", "running"), lease_expires_at__lt=now).values_list(
            "pk", flat=True):
        with transaction.atomic():
            # Re-checked under the row lock: the heartbeat may have renewed it meanwhile.
            task = Task.objects.select_for_update(no_key=True).select_related("ticket").get(pk=task_id)
            if task.status not in ("claimed", "running") or not task.lease_expires_at or task.lease_expires_at >= now:
                continue
            task.claims.filter(released_at=None).update(released_at=now)
            if task.attempts >= task.max_attempts:
                task.transition("failed", lease_owner="", lease_expires_at=None, finished_at=now,
                                error=f"worker lost {task.attempts} times (max_attempts {task.max_attempts})")
                dispatch.submit(Job.ADVANCE, task.ticket_id)
                continue
            task.transition("ready", lease_owner="", lease_expires_at=None,
                            error="its worker stopped renewing the lease; re-queued" if task.status == "running"
                            else "",
                            event_payload={"why": "lease expired", "attempts": task.attempts})
            dispatch.submit(Job.RUN_TASK, task.pk)
            requeued += 1
    return requeued


def _send_recoveries(attempts: QuerySet, now) -> int:
    """``recover_merge`` for each attempt, once per lapse of its ticket's merge lease: sent again only once
    a merge lease was taken on the ticket since and lapsed in its turn (the recovery's own merger died),
    or after the resend delay (the message was lost). Every sweep used to send it again, and each
    recovery queued the attempt's review action again, until one of them ran."""
    stale = now - timedelta(seconds=settings.DAGMERGE_RESEND_SECONDS)
    due = attempts.filter(Q(recovery_sent_at=None) | Q(recovery_sent_at__lt=stale)
                          | Q(recovery_sent_at__lt=F("ticket__merge_lock_expires_at")))
    ids = list(due.values_list("pk", flat=True))
    for pk in ids:
        dispatch.submit(Job.RECOVER_MERGE, pk)
    MergeAttempt.objects.filter(pk__in=ids).update(recovery_sent_at=now)
    return len(ids)


def _unrecorded(unlocked: Q, before) -> list[int]:
    """Merged attempts the ticket does not know of (their merger died between the ref move and recording
    it, see ``landing.complete_unrecorded_merge``): nothing else would look at them. Found cheaply — the
    ticket's newest merged attempt has another result than the ticket's head — and checked on the ref."""
    found = []
    for ticket in Ticket.objects.filter(unlocked, status__in=WORKING, updated_at__lt=before):
        newest = ticket.merge_attempts.filter(status="merged").order_by("-pk").first()
        if newest is not None and newest.result_sha and newest.result_sha != ticket.head_sha:
            found.append(newest.pk)
    return found


def _recover_join(join_id: int) -> int:
    with transaction.atomic():
        join = Join.objects.select_for_update(no_key=True).get(pk=join_id)
        if join.status != "merging" or join.merge_attempts.filter(status__in=MERGE_UNDER_WAY).exists():
            return 0
        join.transition("synthesizing", event_payload={"why": "its merger was lost"})
        dispatch.submit(Job.CONVERGE_JOIN, join.pk)
    return 1
