"""Recovery: each attempt keeps the target head it started from, so a merge can be undone by CAS."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from merges.engine.git import Git, RefMoved
from merges.models import MergeAttempt


class CannotRollBack(Exception):
    pass


def recovery_ref(attempt_id: int) -> str:
    return f"refs/dagmerge/recovery/{attempt_id}"


def keep_recovery_point(git: Git, attempt: MergeAttempt) -> None:
    attempt.recovery_ref = recovery_ref(attempt.pk)
    git.update_ref(attempt.recovery_ref, attempt.base_sha, None, message="dagmerge: recovery point")


def roll_back(git: Git, attempt_id: int, user=None) -> MergeAttempt:
    """Move the target ref back to where the attempt found it — only if nothing moved it since."""
    with transaction.atomic():
        attempt = MergeAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != "merged":
            raise CannotRollBack(f"merge #{attempt.pk} is {attempt.status}; only a merged attempt can be rolled back")
        kept = git.rev_parse(attempt.recovery_ref) if attempt.recovery_ref else None
        if kept is None:
            raise CannotRollBack(f"merge #{attempt.pk} has no recovery point")
        try:
            git.update_ref(attempt.target_ref, kept, attempt.result_sha, message=f"dagmerge: roll back #{attempt.pk}")
        except RefMoved:
            raise CannotRollBack(
                f"{attempt.target_ref} moved on since merge #{attempt.pk}; roll back the later merges first"
            ) from None
        attempt.status = "rolled_back"
        attempt.rolled_back_by = user
        attempt.rolled_back_at = timezone.now()
        attempt.save(update_fields=["status", "rolled_back_by", "rolled_back_at"])
    return attempt
