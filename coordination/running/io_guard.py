"""No git, subprocess or network call inside a database transaction: checked, not hoped.

A transaction held across I/O keeps SQLite's write lock (every other worker waits) and leaves the row
and the ref disagreeing after a crash in between. ``refuse_io_in_transaction`` is installed as the
engine's ``processes.io_guard`` when the app loads, so every git call and every process start checks it.
Test cases wrap each test in a transaction of their own; those (Django marks them) do not count.
"""

from __future__ import annotations

from django.db import connections


class IOInTransaction(RuntimeError):
    pass


def refuse_io_in_transaction() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.in_atomic_block and not all(getattr(block, "_from_testcase", False) for block in conn.atomic_blocks):
            raise IOInTransaction("git or a process started inside a database transaction: do the I/O outside it")
