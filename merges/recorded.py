"""Recorded resolutions kept in the database: what reviewers approved on a repository, by conflict key."""

from __future__ import annotations

from merges.engine.conflicts import Hunk
from merges.engine.resolvers.recorded import conflict_key
from merges.models import MergeAttempt, RecordedResolution


class DatabaseResolutions:
    """The resolver store for one repository (see ``merges.engine.resolvers.recorded``)."""

    def __init__(self, repository_id: int):
        self.repository_id = repository_id

    def lookup(self, key: str) -> list[str] | None:
        found = RecordedResolution.objects.filter(repository_id=self.repository_id, conflict_key=key).first()
        return list(found.resolution) if found else None


def remember_decisions(attempt: MergeAttempt, files, user) -> int:
    """Keep every hunk a person decided in an approved round; returns how many."""
    kept = 0
    repository_id = attempt.ticket.repository_id
    for conflict in files:
        for hunk, decision in zip(conflict.hunks, conflict.resolutions or [], strict=False):
            if decision.get("tier") != "human" or decision.get("lines") is None:
                continue
            key = conflict_key(Hunk(hunk["start"], hunk["ours"], hunk["base"], hunk["theirs"]))
            RecordedResolution.objects.update_or_create(
                repository_id=repository_id, conflict_key=key,
                defaults={"resolution": decision["lines"], "path": conflict.path, "approved_by": user,
                          "attempt": attempt})
            kept += 1
    return kept
