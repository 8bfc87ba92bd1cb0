"""Deterministic conflict resolvers: small named functions, tried cheapest first, declining when unsure.

Public API::

    resolve_file(detail, rule_set="history-safe" | "complementary", store=None) -> FileResolution
    resolve_merged(merged_text, path, Sides(base, ours, theirs), rule_set, store) -> FileResolution
    FileResolution.outcomes  # per hunk: HunkOutcome(hunk, resolver name or None, resolved lines or None)
    FileResolution.text      # the whole resolved file when every hunk is settled, else None
    FileResolution.render()  # settled hunks replaced, the others left with conflict markers
    RecordedResolutions / ResolutionStore / conflict_key  # reviewer-approved resolutions reused
"""

from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.ladder import (
    COMPLEMENTARY,
    HISTORY_SAFE,
    RECORDED,
    RULE_SETS,
    FileResolution,
    HunkOutcome,
    Resolver,
    resolve_file,
    resolve_merged,
    resolvers_for,
)
from merges.engine.resolvers.recorded import RecordedResolutions, ResolutionStore, conflict_key

__all__ = [
    "COMPLEMENTARY",
    "HISTORY_SAFE",
    "RECORDED",
    "RULE_SETS",
    "FileResolution",
    "HunkOutcome",
    "RecordedResolutions",
    "ResolutionStore",
    "Resolver",
    "Sides",
    "conflict_key",
    "resolve_file",
    "resolve_merged",
    "resolvers_for",
]
