"""Running a convergence merge as an audited MergeAttempt, and moving the target ref by CAS."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from merges.conflicts import describe_conflicts
from merges.convergence import Source, converge
from merges.git import Git, GitError, RefMoved
from merges.models import ConflictFile, MergeAttempt
from merges.recovery import keep_recovery_point


def run_attempt(
    git: Git,
    *,
    ticket_id: int,
    target_ref: str,
    expected_head: str,
    sources: Sequence[Source],
    branches: dict[str, str],
    join_id: int | None = None,
    task_id: int | None = None,
) -> MergeAttempt:
    """Merge ``sources`` onto ``expected_head``; on success move ``target_ref`` from it (CAS).

    A conflict leaves the ref untouched and records the conflicted files; a ref found elsewhere than
    ``expected_head`` fails the attempt loudly instead of overwriting what someone else put there.
    """
    attempt = MergeAttempt.objects.create(
        ticket_id=ticket_id, join_id=join_id, task_id=task_id, target_ref=target_ref,
        base_sha=expected_head,
        incoming=[{"name": s.name, "branch": branches.get(s.name, ""), "sha": s.sha} for s in sources],
    )
    try:
        actual = git.rev_parse(target_ref)
        if actual != expected_head:
            raise RefMoved(["rev-parse", target_ref], 1, f"{target_ref} is at {actual}, expected {expected_head}")
        keep_recovery_point(git, attempt)
        result = converge(git, expected_head, sources,
                          message=lambda s: f"Merge {branches.get(s.name, s.name)} into "
                                                  f"{target_ref.removeprefix('refs/heads/')}\n")
        attempt.conflict_scores = result.scores
        attempt.pairwise_conflicts = result.pairwise
        attempt.merge_order = result.order
        attempt.pending_sources = result.pending
        attempt.merge_tree_runs = result.merge_tree_runs
        attempt.duration_ms = result.duration_ms
        if result.clean:
            if result.head != expected_head:
                git.update_ref(target_ref, result.head, expected_head, message="dagmerge: convergence merge")
            attempt.result_sha, attempt.status = result.head, "merged"
        else:
            attempt.partial_sha, attempt.status = result.head, "conflicted"
            _record_conflicts(git, attempt, result.conflict, result.conflict_source or "")
    except RefMoved as exc:
        attempt.status = "failed"
        attempt.error = (f"{target_ref} moved underneath dagmerge ({exc.stderr}); nothing was overwritten")
    except GitError as exc:
        attempt.status, attempt.error = "failed", str(exc)
    attempt.finished_at = timezone.now()
    attempt.save()
    return attempt


def _record_conflicts(git: Git, attempt: MergeAttempt, conflict, source: str) -> None:
    with transaction.atomic():
        for detail in describe_conflicts(git, conflict):
            ConflictFile.objects.create(
                attempt=attempt, path=detail.path, kind=detail.kind, source=source,
                base_oid=detail.base_oid, ours_oid=detail.ours_oid, theirs_oid=detail.theirs_oid,
                base_text=detail.base_text, ours_text=detail.ours_text, theirs_text=detail.theirs_text,
                merged_text=detail.merged_text, hunks=[h.as_dict() for h in detail.hunks],
                hunk_count=detail.hunk_count, git_messages=detail.messages, proposed_by="git",
            )
