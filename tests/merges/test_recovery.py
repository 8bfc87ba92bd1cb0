from __future__ import annotations

import pytest

from coordination import workspace
from coordination.flow import rollback_attempt
from merges.models import MergeAttempt
from merges.recovery import CannotRollBack
from tests.scenarios import run_ticket, sh, source_repo

pytestmark = pytest.mark.django_db(transaction=True)


def test_rollback_restores_the_recovery_point_by_cas_and_marks_the_attempt(tmp_path):
    repo = source_repo(tmp_path)
    ticket = run_ticket(repo, [{"key": "A", "command": sh("echo a > a.txt")},
                               {"key": "B", "depends_on": ["A"], "command": sh("echo b > b.txt")}])
    first, last = MergeAttempt.objects.filter(ticket=ticket).order_by("pk")
    clone = workspace.clone_git(ticket.repository_id)
    assert clone.rev_parse(first.recovery_ref) == ticket.base_sha

    with pytest.raises(CannotRollBack, match="moved on since"):
        rollback_attempt(first.pk)  # B's merge came after it

    rollback_attempt(last.pk)

    last.refresh_from_db()
    ticket.refresh_from_db()
    assert last.status == "rolled_back" and last.rolled_back_at
    assert clone.rev_parse(ticket.ref) == last.base_sha == ticket.head_sha
    assert repo.head(f"refs/heads/{ticket.branch}") == last.base_sha  # published back
    assert not ticket.tasks.get(key="B").landed and ticket.tasks.get(key="A").landed
    with pytest.raises(CannotRollBack, match="only a merged attempt"):
        rollback_attempt(last.pk)
