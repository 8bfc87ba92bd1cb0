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
        "running": {"merging", "awaiting_review", "done", "failed", "cancelled"},
        "merging": {"running", "awaiting_review", "done", "failed", "cancelled"},
        "awaiting_review": {"merging", "running", "failed", "cancelled"},
        "failed": {"running", "cancelled"},  # a retried task puts a failed ticket back to work
        "done": set(),
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
        "succeeded": {"pending"},  # dropped from a join by a reviewer: re-run on the merged head
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
        "merging": {"merged", "awaiting_review", "failed"},
        "awaiting_review": {"merging", "merged", "failed"},
        "merged": set(),
        "failed": {"waiting"},
    },
)
