"""Recorded resolutions: what a reviewer approved on a repository, reused when the same conflict returns.

This is ``git rerere``'s idea: a conflict is known by its two sides, whitespace at line ends and
which side is "ours" aside, so the same clash met again from either direction finds the answer.
The store is anything with ``lookup``; this module keeps one in memory and, for the CLI, in a JSON file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from merges.engine.conflicts import Hunk
from merges.engine.resolvers.context import HunkContext


class ResolutionStore(Protocol):
    def lookup(self, conflict_key: str) -> list[str] | None:
        """The approved lines for a conflict with this key, or None."""

    def citation(self, conflict_key: str) -> dict[str, object]:
        """Where the approved lines for this key came from (who approved them, in which review), kept with
        the hunk they settle so the reuse can be traced back; {} when unknown."""


def conflict_key(hunk: Hunk) -> str:
    sides = sorted("\n".join(line.rstrip() for line in side) for side in (hunk.ours, hunk.theirs))
    return hashlib.sha256("\0".join(sides).encode()).hexdigest()


class RecordedResolutions:
    """Approved resolutions held in memory; ``load``/``save`` keep them in a JSON file."""

    def __init__(self, entries: dict[str, dict[str, Any]] | None = None):
        self.entries: dict[str, dict[str, Any]] = dict(entries or {})

    @classmethod
    def load(cls, path: str | Path) -> RecordedResolutions:
        path = Path(path)
        return cls(json.loads(path.read_text()) if path.exists() else {})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.entries, indent=1, sort_keys=True) + "\n")

    def lookup(self, conflict_key: str) -> list[str] | None:
        entry = self.entries.get(conflict_key)
        return list(entry["resolution"]) if entry else None

    def citation(self, conflict_key: str) -> dict[str, object]:
        entry = self.entries.get(conflict_key)
        return {"approved_by": entry.get("approved_by", "")} if entry else {}

    def record(self, hunk: Hunk, resolution: list[str], approved_by: str) -> str:
        key = conflict_key(hunk)
        self.entries[key] = {"resolution": list(resolution), "approved_by": approved_by}
        return key


def recorded(store: ResolutionStore) -> Callable[[HunkContext], list[str] | None]:
    """A resolver answering from ``store``."""

    def resolve(ctx: HunkContext) -> list[str] | None:
        return store.lookup(conflict_key(ctx.hunk))

    return resolve
