"""Recovery: each merge keeps the target head it moved from (``refs/dagmerge/recovery/<attempt>``, written in
the same ref transaction as the move), so a merge can be undone by CAS."""

from __future__ import annotations

from django.utils import timezone

from merges.engine.git import Git, RefMoved
from merges.models import MergeAttempt, RecordedResolution


class CannotRollBack(Exception):
    pass


def recovery_ref(attempt_id: int) -> str:
    return f"refs/dagmerge/recovery/{attempt_id}"


def roll_back_ref(git: Git, attempt: MergeAttempt) -> None:
    """Move the target ref back to where the attempt found it — only if nothing moved it since (CAS).

    Outside any transaction. Idempotent: a ref already at the recovery point is left as it is, so a
    rollback whose process died after the ref moved completes when it runs again.
    """
    if attempt.status != "merged":
        raise CannotRollBack(f"merge #{attempt.pk} is {attempt.status}; only a merged attempt can be rolled back")
    kept = git.rev_parse(attempt.recovery_ref) if attempt.recovery_ref else None
    if kept is None:
        raise CannotRollBack(f"merge #{attempt.pk} has no recovery point")
    if git.rev_parse(attempt.target_ref) == kept:
        return
    try:
        git.update_ref(attempt.target_ref, kept, attempt.result_sha, message=f"dagmerge: roll back #{attempt.pk}")
    except RefMoved:
        raise CannotRollBack(
            f"{attempt.target_ref} moved on since merge #{attempt.pk}; roll back the later merges first"
        ) from None


def mark_rolled_back(attempt_id: int, user=None) -> int:
    """Within the caller's transaction: the attempt is rolled back, and the resolutions reviewers approved
    in it are withdrawn, so the ``recorded`` resolver no longer reuses them. Returns how many were."""
    MergeAttempt.objects.filter(pk=attempt_id, status="merged").update(
        status="rolled_back", rolled_back_by=user, rolled_back_at=timezone.now(), pending_action={})
    withdrawn, _ = RecordedResolution.objects.filter(attempt_id=attempt_id).delete()
    return withdrawn
