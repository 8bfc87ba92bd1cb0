"""Every status a ticket, task or join can have, and the only transitions allowed between them.

Kept in one table per model so an illegal move raises instead of silently corrupting a DAG run.
"""

from __future__ import annotations

from dataclasses import dataclass


class IllegalTransition(Exception):
    pass


@dataclass(frozen=True)
class StateMachine:
    name: str
    transitions: dict[str, frozenset[str]]

    @property
    def states(self) -> list[str]:
        return list(self.transitions)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(s, s.replace("_", " ")) for s in self.transitions]

    def check(self, current: str, new: str) -> None:
        if new not in self.transitions.get(current, frozenset()):
            raise IllegalTransition(f"{self.name}: {current} → {new} is not allowed")

    def is_final(self, state: str) -> bool:
        return not self.transitions[state]


def _machine(name: str, table: dict[str, set[str]]) -> StateMachine:
    return StateMachine(name, {state: frozenset(targets) for state, targets in table.items()})


TICKET = _machine(
    "ticket",
    {
        "pending": {"running", "failed", "cancelled"},
        "running": {"merging", "awaiting_review", "done", "failed", "cancelled", "rolled_back"},
        "merging": {"running", "awaiting_review", "done", "failed", "cancelled", "rolled_back"},
        "awaiting_review": {"merging", "running", "failed", "cancelled", "rolled_back"},
        "failed": {"running", "cancelled", "rolled_back"},  # a retried task puts a failed ticket back to work
        # A merge was undone: nothing lands or starts until a person resumes the ticket (re-running the
        # rolled-back tasks on the restored head) or closes it.
        "rolled_back": {"running", "cancelled"},
        "done": {"rolled_back"},
        "cancelled": set(),
    },
)

TASK = _machine(
    "task",
    {
        "pending": {"ready", "blocked", "cancelled"},
        "ready": {"claimed", "pending", "cancelled"},
        "claimed": {"running", "ready", "failed", "cancelled"},
        "running": {"succeeded", "failed", "ready", "cancelled"},  # ready: its worker died, re-queued
        "succeeded": {"pending", "rolled_back"},  # pending: dropped from a join by a reviewer, re-run
        "rolled_back": {"pending", "cancelled"},  # its merge was undone: re-run when the ticket resumes
        "failed": {"pending", "cancelled"},
        "blocked": {"pending", "cancelled"},
        "cancelled": set(),
    },
)

JOIN = _machine(
    "join",
    {
        "waiting": {"synthesizing", "failed"},
        "synthesizing": {"merging", "failed"},
        "merging": {"merged", "awaiting_review", "failed", "synthesizing"},  # synthesizing: its merger died
        "awaiting_review": {"merging", "merged", "failed"},
        "merged": {"rolled_back"},
        "rolled_back": {"waiting"},  # merged again when the ticket resumes
        "failed": {"waiting"},
    },
)


# A ticket that has ended (it may still be rolled back, which is not an end), and one that takes work.
TICKET_ENDED = frozenset({"done", "cancelled"})
TICKET_IDLE = TICKET_ENDED | {"rolled_back"}  # nothing lands, starts or is added until a person resumes it
