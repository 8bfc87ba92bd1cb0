"""Recorded resolutions kept in the database: what reviewers approved on a repository, by conflict key."""

from __future__ import annotations

from django.utils import timezone

from merges.engine.conflicts import Hunk
from merges.engine.resolvers.recorded import conflict_key
from merges.models import ConflictFile, MergeAttempt, RecordedResolution


class DatabaseResolutions:
    """The resolver store for one repository (see ``merges.engine.resolvers.recorded``)."""

    def __init__(self, repository_id: int):
        self.repository_id = repository_id
        self._found: dict[str, RecordedResolution] = {}  # what lookup served, for its citation

    def lookup(self, key: str) -> list[str] | None:
        found = (RecordedResolution.objects.filter(repository_id=self.repository_id, conflict_key=key)
                 .select_related("approved_by", "attempt").first())
        if found is None:
            return None
        self._found[key] = found
        return list(found.resolution)

    def citation(self, key: str) -> dict:
        """The review a served resolution came from, as it stood when it was served: later approvals of
        the same conflict or a rollback that withdraws it change the store, not what this merge used."""
        found = self._found.get(key)
        if found is None:
            return {}
        return {
            "id": found.pk, "attempt_id": found.attempt_id,
            "ticket_id": found.attempt.ticket_id if found.attempt else None, "path": found.path,
            "approved_by": found.approved_by.get_username() if found.approved_by else "",
            "approved_at": found.created_at.isoformat(), "anchor": _anchor(found, key),
        }


def _anchor(found: RecordedResolution, key: str) -> str:
    """The hunk of the review that made the resolution (its id on that review page), or ""."""
    for conflict in ConflictFile.objects.filter(attempt_id=found.attempt_id, path=found.path).order_by("-round"):
        for index, hunk in enumerate(conflict.hunks):
            if conflict_key(Hunk(hunk["start"], hunk["ours"], hunk["base"], hunk["theirs"])) == key:
                return f"hunk-{conflict.pk}-{index}"
    return ""


def remember_decisions(attempt: MergeAttempt, files, user) -> int:
    """Keep every hunk a person decided in an approved round; returns how many. A file decided as a whole
    is not kept hunk by hunk: its hunks' lines are not what was approved."""
    kept = 0
    repository_id = attempt.ticket.repository_id
    for conflict in files:
        if conflict.result_text is not None or conflict.result_deleted or conflict.result_oid:
            continue
        for hunk, decision in zip(conflict.hunks, conflict.resolutions or [], strict=False):
            if decision.get("tier") != "human" or decision.get("lines") is None:
                continue
            key = conflict_key(Hunk(hunk["start"], hunk["ours"], hunk["base"], hunk["theirs"]))
            RecordedResolution.objects.update_or_create(
                repository_id=repository_id, conflict_key=key,
                defaults={"resolution": decision["lines"], "path": conflict.path, "approved_by": user,
                          "attempt": attempt, "created_at": timezone.now()})  # when it was last approved
            kept += 1
    return kept
