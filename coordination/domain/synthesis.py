"""Synthesis: the results of a join's sources, merged into its continuation's context.

Each source's own result stays under its key; the values they reported (``$DAGMERGE_RESULT``) are merged
into one mapping, and a key two sources reported differently is kept per source and listed as a
disagreement instead of one value silently winning.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coordination.models import Task


def synthesize(sources: Iterable[Task]) -> dict[str, Any]:
    per_source: dict[str, Any] = {}
    merged: dict[str, Any] = {}
    disagreements: dict[str, dict[str, Any]] = {}
    for task in sorted(sources, key=lambda t: t.key):
        result = task.result or {}
        per_source[task.key] = {
            "title": task.title,
            "head": task.head_sha,
            "changed_files": result.get("changed_files", []),
            "data": result.get("data"),
        }
        data = result.get("data")
        if not isinstance(data, dict):
            continue
        for name, value in data.items():
            if name in disagreements:
                disagreements[name][task.key] = value
            elif name in merged and merged[name] != value:
                merged.pop(name)
                earlier = {k: s["data"][name] for k, s in per_source.items() if k != task.key and _reported(s, name)}
                disagreements[name] = {**earlier, task.key: value}
            else:
                merged[name] = value
    return {"sources": per_source, "merged": merged, "disagreements": disagreements}


def _reported(source: dict[str, Any], name: str) -> bool:
    return isinstance(source["data"], dict) and name in source["data"]
