"""A ticket's state as plain data: for ``dagmerge status --json``, ``dagmerge run --json`` and the API."""

from __future__ import annotations

from typing import Any

from coordination.models import Ticket


def ticket_report(ticket: Ticket) -> dict[str, Any]:
    tasks = list(ticket.tasks.all())
    joins = list(ticket.joins.select_related("continuation").prefetch_related("sources", "merge_attempts"))
    return {
        "ticket": ticket.pk,
        "title": ticket.title,
        "status": ticket.status,
        "branch": ticket.branch,
        "base_sha": ticket.base_sha,
        "head": ticket.head_sha,
        "error": ticket.error,
        "tasks": [
            {
                "key": t.key,
                "title": t.title,
                "status": t.status,
                "head": t.head_sha or None,
                "landed": t.landed,
                "started_at": _iso(t.started_at),
                "finished_at": _iso(t.finished_at),
                "error": t.error,
            }
            for t in tasks
        ],
        "joins": [_join_report(j) for j in joins],
    }


def _join_report(join) -> dict[str, Any]:
    attempt = max(join.merge_attempts.all(), key=lambda a: a.pk, default=None)
    return {
        "continuation": join.continuation.key,
        "sources": sorted(s.key for s in join.sources.all()),
        "status": join.status,
        "merge_order": attempt.merge_order if attempt else [],
        "scores": attempt.conflict_scores if attempt else {},
        "attempt": attempt.pk if attempt else None,
    }


def _iso(value) -> str | None:
    return value.isoformat() if value else None
