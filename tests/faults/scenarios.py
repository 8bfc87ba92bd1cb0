"""The tickets each kind of fault is aimed at, and how the campaign knows the moment has come.

Every scenario submits one ticket per fault, waits for the window it aims at (a task running, a join
merging, an approve being carried out, a push under way), and says whether that state was still in flight
at the moment of the fault. The ticket's ``verify_command`` (``sleep 1``) keeps each merge open for a
second, and the publish scenario's source is a ``file://`` remote whose pre-receive hook takes a second,
so a fault at a random moment lands inside them.
"""

from __future__ import annotations

from pathlib import Path

from coordination.domain.spec import validate_spec
from coordination.models import Join, Task, Ticket
from coordination.review.actions import request_approve
from coordination.scheduling.tickets import submit_ticket
from merges import review
from merges.models import MergeAttempt
from tests import factories
from tests.faults.campaign import Bench, db, describe, effect_task
from tests.faults.processes import wait_until
from tests.gitrepo import Repo

SLOW_MERGE = "sleep 1"


def submit_spec(repository: str, tasks: list[dict], **fields) -> int:
    spec = {"title": "fault campaign", "repository": repository, "base_branch": "main", "tasks": tasks, **fields}
    return submit_ticket(validate_spec(spec)).pk


class Scenario:
    delay: tuple[float, float] = (0.0, 1.0)  # seconds after the window opens, drawn by the seeded generator

    def __init__(self, bench: Bench, root: Path):
        self.bench = bench
        self.repo = Repo(root / "source")
        self.repo.commit({"README.md": "# project\n", "shared.txt": "base\n"}, "initial")

    @property
    def source(self) -> str:
        return str(self.repo.path)

    def submit(self) -> int:
        raise NotImplementedError

    def window(self, ticket_id: int) -> None:
        raise NotImplementedError

    def in_flight(self, ticket_id: int) -> bool:
        raise NotImplementedError


class TaskRunning(Scenario):
    """One task; the fault hits it while its command runs (1.6 to 4 s of ticks)."""

    def submit(self) -> int:
        ticks = self.bench.rng.randint(8, 20)
        self.delay = (0.2, ticks * 0.2)
        return submit_spec(self.source, [effect_task("A", self.bench.effects, ticks, {"a.txt": "a"})])

    def window(self, ticket_id: int) -> None:
        wait_until(lambda: db(lambda: Task.objects.get(ticket_id=ticket_id, key="A").status == "running"), 90,
                   "task A to run", state=lambda: describe(ticket_id))

    def in_flight(self, ticket_id: int) -> bool:
        return db(lambda: Task.objects.get(ticket_id=ticket_id, key="A").status == "running")


class JoinMerging(Scenario):
    """{B, C} → D; the fault hits the join of B and C while it merges (verify takes a second)."""

    def submit(self) -> int:
        log = self.bench.effects
        return submit_spec(self.source, [
            effect_task("B", log, 2, {"b.txt": "b"}),
            effect_task("C", log, 2, {"c.txt": "c"}),
            effect_task("D", log, 1, {"d.txt": "d"}, depends_on=["B", "C"]),
        ], verify_command=SLOW_MERGE)

    def window(self, ticket_id: int) -> None:
        wait_until(lambda: db(lambda: Join.objects.filter(ticket_id=ticket_id, status="merging").exists()), 90,
                   "the join to merge", 0.05, lambda: describe(ticket_id))

    def in_flight(self, ticket_id: int) -> bool:
        return db(lambda: Join.objects.filter(ticket_id=ticket_id, status="merging").exists())


def conflicting_ticket(scenario: Scenario) -> int:
    """B and C rewrite the same line of shared.txt differently: the join waits for a person. The lines are
    new each time, or the resolution the reviewer approved on the last ticket would settle it."""
    log, nonce = scenario.bench.effects, scenario.bench.rng.randrange(10**9)
    return submit_spec(scenario.source, [
        effect_task("B", log, 1, {"shared.txt": f"B side {nonce}"}),
        effect_task("C", log, 1, {"shared.txt": f"C side {nonce}"}),
        effect_task("D", log, 1, {"d.txt": "d"}, depends_on=["B", "C"]),
    ], verify_command=SLOW_MERGE)


def decide_all(ticket_id: int, timeout: float = 120) -> MergeAttempt:
    """Wait for the ticket's review, then take both sides of every hunk, as alice."""
    wait_until(lambda: db(lambda: MergeAttempt.objects.filter(ticket_id=ticket_id, status="conflicted").exists()),
               timeout, f"ticket {ticket_id} to wait for review", 0.2, lambda: describe(ticket_id))
    attempt = MergeAttempt.objects.get(ticket_id=ticket_id, status="conflicted")
    for conflict in review.current_files(attempt):
        for index in range(len(conflict.hunks)):
            review.decide_hunk(conflict.pk, index, "both_ours_first", factories.alice())
    return attempt


class ApproveContinuing(Scenario):
    """A reviewer approved a conflicted join: the fault hits the queued approve while it continues the merge."""

    delay = (0.0, 0.8)

    def submit(self) -> int:
        ticket_id = conflicting_ticket(self)
        attempt = decide_all(ticket_id)
        request_approve(attempt.pk, factories.alice())
        self.attempt_id = attempt.pk
        return ticket_id

    def window(self, ticket_id: int) -> None:
        """Until a worker carries the approve out (it holds the ticket's merge lease); how soon that is
        depends on the broker, so a fixed delay from the request missed it on Redis."""
        wait_until(lambda: db(lambda: self.in_flight(ticket_id) and Ticket.objects.filter(
            pk=ticket_id).exclude(merge_lock_owner="").exists()), 90, "a worker to carry out the approve", 0.05,
            lambda: describe(ticket_id))

    def in_flight(self, ticket_id: int) -> bool:
        return db(lambda: MergeAttempt.objects.get(pk=self.attempt_id).status == "running")


class Publishing(Scenario):
    """One task; the ticket's source is a ``file://`` remote whose pre-receive hook takes a second, and the
    fault hits while the push is under way."""

    delay = (0.0, 0.7)

    def __init__(self, bench: Bench, root: Path):
        super().__init__(bench, root)
        self.marker = root / "pushes.log"
        hook = self.repo.path / ".git" / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\necho start >> {self.marker}\nsleep 1\necho end >> {self.marker}\n")
        hook.chmod(0o755)

    @property
    def source(self) -> str:
        return f"file://{self.repo.path}"

    def _lines(self) -> list[str]:
        return self.marker.read_text().split() if self.marker.exists() else []

    def _pushing(self) -> bool:
        """A push began since the ticket was submitted and has not ended (a killed one never ends)."""
        lines = self._lines()[self._since:]
        return bool(lines) and lines[-1] == "start"

    def submit(self) -> int:
        ticket_id = submit_spec(self.source, [effect_task("A", self.bench.effects, 1, {"a.txt": "a"})])
        self._since = len(self._lines())  # the ticket branch's first push, made by submit itself, is over
        return ticket_id

    def window(self, ticket_id: int) -> None:
        wait_until(self._pushing, 90, "a push to the source", 0.05, lambda: describe(ticket_id))

    def in_flight(self, ticket_id: int) -> bool:
        return self._pushing() and db(lambda: not Ticket.objects.filter(
            pk=ticket_id, published_sha=Ticket.objects.get(pk=ticket_id).head_sha).exists())


SCENARIOS = {"task": TaskRunning, "join": JoinMerging, "approve": ApproveContinuing, "publish": Publishing}
