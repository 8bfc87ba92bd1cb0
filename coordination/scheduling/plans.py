"""What the merge engine is told about a ticket's merge: sources, what each side meant, the policy.

``merges`` knows nothing of tickets; this module translates a ticket and its tasks into a MergePlan.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from django.conf import settings

from coordination.domain.budget import llm_settings, ticket_budget
from coordination.models import Task, Ticket
from coordination.running import workspace
from merges.attempts import MergePlan
from merges.engine.convergence import Source
from merges.engine.llm import SideIntent
from merges.engine.settling import LadderPolicy
from merges.engine.verify import VerifyCommand
from merges.recorded import DatabaseResolutions

SUMMARY_CHARS = 2000


def merge_plan(ticket: Ticket, tasks: Sequence[Task]) -> MergePlan:
    git = workspace.clone_git(ticket.repository_id)
    merges_root = workspace.worktrees_root()
    merges_root.mkdir(parents=True, exist_ok=True)
    return MergePlan(
        sources=[Source(t.key, t.head_sha, fork_point=t.start_sha or None) for t in tasks],
        branches={t.key: t.branch for t in tasks},
        sides=SideIntents(git, tasks),
        policy=LadderPolicy(
            # Tasks of one ticket are siblings: both changes are meant to land.
            rule_set="complementary", conflict_threshold=ticket.conflict_threshold,
            review_policy=ticket.review_policy, budget=ticket_budget(ticket),
            llm=replace(llm_settings(), confinement=workspace.agent_confinement()),
            store=DatabaseResolutions(ticket.repository_id), worktree_root=merges_root,
        ),
        verify=VerifyCommand(ticket.verify_command, settings.DAGMERGE_MERGE_TIMEOUT, merges_root,
                             trusted=settings.DAGMERGE_TRUSTED_CODE, hide=workspace.hidden_from_tasks(),
                             network=ticket.network)
        if ticket.verify_command else None,
    )


class SideIntents(Mapping[str, SideIntent]):
    """What each task meant, read when a conflict reaches a tier that uses it (its diff stat is a git
    process): most merges are clean and never look."""

    def __init__(self, git, tasks: Sequence[Task]):
        self.git, self.tasks = git, {t.key: t for t in tasks}
        self.read: dict[str, SideIntent] = {}

    def __getitem__(self, key: str) -> SideIntent:
        if key not in self.read:
            self.read[key] = side_intent(self.git, self.tasks[key])
        return self.read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


def side_intent(git, task: Task) -> SideIntent:
    result = task.result or {}
    summary = json.dumps(result.get("data"), default=str) if result.get("data") is not None else ""
    diff_stat = ""
    if task.start_sha and task.head_sha:
        diff_stat = git.text("diff", "--stat", task.start_sha, task.head_sha)
    return SideIntent(task_key=task.key, title=task.title, instructions=task.instructions,
                      result_summary=summary[:SUMMARY_CHARS], diff_stat=diff_stat, label=task.branch)
