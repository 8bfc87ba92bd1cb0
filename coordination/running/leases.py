"""Leases: every in-flight row has an owner and an expiry, taken and renewed by conditional UPDATE.

One model for every in-flight state (a task running, the ticket's merge lock that covers a join merging,
a merge attempt running and a reviewer's action): ``Lease`` takes, renews and releases the row's
``<prefix>_owner`` / ``<prefix>_expires_at`` columns, never by read-then-write, so two workers cannot both
believe they hold it. ``Heartbeat`` renews a lease from its own thread while the work runs; when it cannot
(the row was taken over or cancelled, or the database stayed unreachable until the lease was about to
lapse) it sets ``lost`` with the reason, and the work stops itself before anyone else may start it again.
``Heartbeat.while_held`` writes the work's result across a database outage for as long as the lease holds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection, models
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

T = TypeVar("T")
TRANSIENT = (OperationalError, InterfaceError)  # the database is away (locked, restarting, the session cut)


def new_owner() -> str:
    """Who holds a lease: host and process (so a sweep on the same host can tell a dead holder), and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Lease:
    """A lease on one row of ``model``: columns ``<prefix>_owner`` (blank when free) and ``<prefix>_expires_at``.

    ``held_while`` narrows every UPDATE (e.g. ``{"status": "running"}``), so a lease on a row that moved
    on (cancelled, finished) can no longer be renewed.
    """

    model: type[models.Model]
    pk: int
    seconds: float
    prefix: str = "lease"
    owner: str = field(default_factory=new_owner)
    held_while: Mapping[str, Any] = field(default_factory=dict)

    @property
    def _owner_field(self) -> str:
        return f"{self.prefix}_owner"

    @property
    def _expires_field(self) -> str:
        return f"{self.prefix}_expires_at"

    def _until(self) -> Any:
        return timezone.now() + timedelta(seconds=self.seconds)

    def take(self, **also: Any) -> bool:
        """Take the lease if it is free or expired; ``also`` is written in the same UPDATE."""
        free = Q(**{self._owner_field: ""}) | Q(**{f"{self._expires_field}__lt": timezone.now()})
        rows = self.model._default_manager.filter(free, pk=self.pk, **self.held_while)
        return bool(rows.update(**{self._owner_field: self.owner, self._expires_field: self._until()}, **also))

    def take_waiting(self, wait_seconds: float, poll: float = 0.05) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for its holder; raises TimeoutError. Tried again
        after 5 ms, then less and less often, up to every ``poll`` seconds: the merge lease a waiting merge
        wants is mostly held for a few tens of milliseconds, and a worker slot waits meanwhile."""
        deadline = time.monotonic() + wait_seconds
        pause = min(0.005, poll)
        while not self.take():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.model.__name__} {self.pk}: held by another worker for {wait_seconds:g} s")
            time.sleep(pause)
            pause = min(pause * 2, poll)

    def renew(self) -> bool:
        """Extend the lease; False when this owner no longer holds it (taken over, or the row moved on)."""
        rows = self.model._default_manager.filter(pk=self.pk, **{self._owner_field: self.owner}, **self.held_while)
        return bool(rows.update(**{self._expires_field: self._until()}))

    def release(self) -> bool:
        rows = self.model._default_manager.filter(pk=self.pk, **{self._owner_field: self.owner})
        return bool(rows.update(**{self._owner_field: "", self._expires_field: None}))

    def heartbeat(self, name: str = "") -> Heartbeat:
        return Heartbeat(self.renew, self.seconds, name=name or f"lease-{self.model.__name__}-{self.pk}")


class Heartbeat(threading.Thread):
    """Renews a lease every third of its length, from its own thread and database connection.

    A database error is retried (a locked SQLite file, a PostgreSQL restart) until the lease is about to
    lapse; only then, or when ``renew`` answers False, is the lease lost: ``lost`` is set and ``reason``
    says why. The work watches ``lost`` and stops, so it never runs on after someone else may have
    taken it over.
    """

    def __init__(self, renew: Callable[[], bool], seconds: float, name: str = "heartbeat"):
        super().__init__(daemon=True, name=name)
        self._renew, self.seconds = renew, seconds
        self.on_renewed: Callable[[], None] | None = None  # e.g. touch a run's alive file for its watchdog
        self._stop_event = threading.Event()
        self.lost = threading.Event()
        self.reason = ""

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        interval = self.seconds / 3
        renewed_at = time.monotonic()
        margin = min(self.seconds / 6, 5.0)  # stop the work this long before the lease would lapse
        close_old_connections()
        try:
            while not self._stop_event.wait(min(interval, max(renewed_at + interval - time.monotonic(), 0.05))):
                try:
                    if not self._renew():
                        self._lose("the lease was taken over, or the work was cancelled")
                        return
                    renewed_at = time.monotonic()
                    if self.on_renewed is not None:
                        self.on_renewed()
                except DatabaseError as exc:
                    log.warning("%s: cannot renew the lease (%s); retrying", self.name, exc)
                    connection.close()  # a broken connection is opened anew on the next try
                    if time.monotonic() > renewed_at + self.seconds - margin:
                        self._lose(f"the database stayed unreachable until the lease ran out: {exc}")
                        return
                    self._stop_event.wait(min(1.0, interval))
        finally:
            connection.close()

    def _lose(self, reason: str) -> None:
        log.warning("%s: lease lost: %s", self.name, reason)
        self.reason = reason
        self.lost.set()

    def while_held(self, write: Callable[[], T]) -> T | None:
        """Run ``write`` (a database write of the work this heartbeat covers), retrying a transient
        database error with back-off for as long as the lease is held; None once it is lost.

        A run that finished must not lose its result to a database that is away for a moment (a
        PostgreSQL restart, a locked SQLite file): the heartbeat goes on renewing meanwhile, so nobody
        starts the work again, and the lease bounds the wait. The heartbeat must still be running. A
        write that keeps failing while the lease is renewed (the database answers, but not to it) is
        given up after twice the lease: its error is raised.
        """
        wait, give_up_at = 0.1, time.monotonic() + 2 * self.seconds
        while not self.lost.is_set():
            try:
                return write()
            except TRANSIENT as exc:
                if time.monotonic() > give_up_at:
                    raise
                log.warning("%s: cannot write (%s); retrying while the lease is held", self.name, exc)
                connection.close()  # a broken connection is opened anew on the next try
                self.lost.wait(wait)
                wait = min(wait * 2, 2.0)
        return None

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=10)


@contextmanager
def ticket_merge_lease(ticket_id: int, wait_seconds: float = 600) -> Iterator[Heartbeat]:
    """One merge at a time per ticket, across processes and hosts, renewed while the merge runs.

    Yields the heartbeat: a merge checks ``lost`` before it moves the ticket ref. A merger that dies
    leaves the lease to expire; the sweep then recovers its join and its attempt.
    """
    from coordination.models import Ticket

    lease = Lease(Ticket, ticket_id, settings.DAGMERGE_LEASE_SECONDS, prefix="merge_lock")
    lease.take_waiting(wait_seconds)
    try:
        with lease.heartbeat(name=f"merge-lease-{ticket_id}") as beat:
            yield beat
    finally:
        lease.release()
