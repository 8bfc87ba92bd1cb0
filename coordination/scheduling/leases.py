"""The ticket's merge lease: one merge at a time per ticket, across processes and hosts."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from coordination.models import Ticket

log = logging.getLogger(__name__)

@contextmanager
def ticket_merge_lease(ticket_id: int, wait_seconds: float = 600) -> Iterator[None]:
    """One merge at a time per ticket, across processes and hosts: a lease row taken by conditional
    UPDATE (expiring, so a dead worker cannot hold it forever)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_seconds
    lease = timedelta(seconds=settings.DAGMERGE_LEASE_SECONDS * 5)
    while True:
        now = timezone.now()
        free = Ticket.objects.filter(Q(merge_lock_owner="") | Q(merge_lock_expires_at__lt=now), pk=ticket_id)
        if free.update(merge_lock_owner=owner, merge_lock_expires_at=now + lease):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"ticket {ticket_id}: another merge held the ticket for {wait_seconds} s")
        time.sleep(0.05)
    try:
        yield
    finally:
        Ticket.objects.filter(pk=ticket_id, merge_lock_owner=owner).update(merge_lock_owner="",
                                                                           merge_lock_expires_at=None)
