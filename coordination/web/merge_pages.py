"""What the merge pages show: the reviews inbox, one merge attempt in full, the merge-cost charts.

Read-only, a fixed number of queries per page; the review page itself is in ``review_page``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.urls import reverse

from coordination.models import Task, Ticket
from coordination.web import charts
from merges import provenance
from merges.models import ConflictFile, MergeAttempt, ReviewAction

FINAL_TICKET = ("done", "failed", "cancelled")
CHART_ATTEMPTS = 40  # the newest merges of a ticket drawn in its chart


def awaiting_review() -> QuerySet[MergeAttempt]:
    """Conflicted attempts a person must settle: a join's that waits for review, or a task branch's that
    has not landed, on a ticket still open."""
    open_join = Q(join__isnull=False, join__status="awaiting_review")
    open_chain = Q(join__isnull=True, task__isnull=False, task__landed=False)
    return (MergeAttempt.objects.filter(open_join | open_chain, status="conflicted")
            .exclude(ticket__status__in=FINAL_TICKET))


def reviews_waiting() -> int:
    return awaiting_review().count()


@dataclass
class InboxRow:
    attempt: MergeAttempt
    continuation: str  # the join's continuation key, or the task whose branch conflicted
    sources: list[str]
    files: int
    hunks: int
    undecided_files: int

    @property
    def waiting_since(self):
        """When the merge stopped for a person (its start, for a row written before it recorded that)."""
        return self.attempt.finished_at or self.attempt.started_at


def inbox() -> list[InboxRow]:
    attempts = list(awaiting_review().select_related("ticket", "join__continuation", "task").order_by("started_at"))
    rows = []
    counts = _round_counts([a.pk for a in attempts])
    for attempt in attempts:
        files, hunks, undecided = counts.get(attempt.pk, {}).get(attempt.round, (0, 0, 0))
        continuation = attempt.join.continuation.key if attempt.join else (attempt.task.key if attempt.task else "")
        rows.append(InboxRow(attempt, continuation, [i["name"] for i in attempt.incoming], files, hunks, undecided))
    return rows


def _round_counts(attempt_ids: list[int]) -> dict[int, dict[int, tuple[int, int, int]]]:
    """attempt → round → (files, hunks, files without a decision)."""
    rows = (ConflictFile.objects.filter(attempt_id__in=attempt_ids).values("attempt_id", "round")
            .annotate(files=Count("id"), hunks=Sum("hunk_count"), undecided=Count("id", filter=Q(decision=""))))
    out: dict[int, dict[int, tuple[int, int, int]]] = {}
    for row in rows:
        out.setdefault(row["attempt_id"], {})[row["round"]] = (row["files"], row["hunks"] or 0, row["undecided"])
    return out


@dataclass
class MatrixCell:
    hunks: int
    heat: float  # 0..1 of the largest value in the matrix
    diagonal: bool = False


def attempt_page(attempt_id: int) -> dict[str, Any]:
    attempt = get_object_or_404(
        MergeAttempt.objects.select_related("ticket__repository", "join__continuation", "task", "rolled_back_by"),
        pk=attempt_id)
    files = list(attempt.conflict_files.select_related("decided_by").order_by("round", "path"))
    closings = provenance.round_closings(attempt)
    names = [i["name"] for i in attempt.incoming]
    tasks = {t.key: t for t in Task.objects.filter(ticket_id=attempt.ticket_id, key__in=names)
             .only("id", "key", "title", "status", "ticket_id")}
    return {
        "attempt": attempt,
        "ticket": attempt.ticket,
        "incoming": [{**i, "task": tasks.get(i["name"])} for i in attempt.incoming],
        "order": attempt.merge_order,
        "scores": sorted(attempt.conflict_scores.items(), key=lambda kv: (kv[1], kv[0])),
        "matrix_names": names,
        "matrix": pairwise_matrix(names, attempt.pairwise_conflicts),
        "files": files,
        "hunk_rows": hunk_rows(files, closings),
        "rounds": round_rows(attempt, files, closings),
        "reviewable": awaiting_review().filter(pk=attempt.pk).exists(),
    }


def pairwise_matrix(names: list[str], pairwise: dict[str, dict[str, int]]) -> list[tuple[str, list[MatrixCell]]]:
    """Rows of the source × source conflict matrix, each cell with its share of the hottest cell."""
    hottest = max((v for row in pairwise.values() for v in row.values()), default=0) or 1
    return [(a, [MatrixCell(0, 0.0, True) if a == b else
                 MatrixCell(pairwise.get(a, {}).get(b, 0), pairwise.get(a, {}).get(b, 0) / hottest)
                 for b in names]) for a in names]


@dataclass
class HunkRow:
    file: ConflictFile
    record: provenance.HunkRecord
    approval: ReviewAction | None  # the approve that accepted its round, when a person looked


@dataclass
class RoundRow:
    """One stop for a person, linked to its place on the review page."""

    number: int
    files: list[ConflictFile]
    closing: ReviewAction | None
    waiting: bool  # the attempt waits for a person on this round now

    @property
    def hunks(self) -> int:
        return sum(f.hunk_count for f in self.files)


def hunk_rows(files: list[ConflictFile], closings: dict[int, ReviewAction]) -> list[HunkRow]:
    """Every hunk of every round with what settled it: the same record the review page shows."""
    rows = []
    for f in files:
        approval = closings.get(f.round)
        approval = approval if approval is not None and approval.action == "approve" else None
        rows += [HunkRow(f, record, approval) for record in provenance.hunk_records(f)]
    return rows


def round_rows(attempt: MergeAttempt, files: list[ConflictFile], closings: dict[int, ReviewAction]) -> list[RoundRow]:
    numbers = {f.round for f in files} | set(closings) | ({attempt.round} if attempt.status == "conflicted" else set())
    return [RoundRow(n, [f for f in files if f.round == n], closings.get(n),
                     attempt.status == "conflicted" and n == attempt.round) for n in sorted(numbers)]


def ticket_chart(ticket_id: int) -> str:
    """The ticket's merges, oldest first: time merging and LLM cost of each."""
    attempts = list(MergeAttempt.objects.filter(ticket_id=ticket_id).order_by("-id")
                    .values_list("id", "duration_ms", "llm_cost_usd", "status")[:CHART_ATTEMPTS])[::-1]
    bars = [charts.Bar(f"#{pk}", reverse("coordination:merge_attempt", args=[pk]), ms, usd,
                       title=f"merge #{pk} ({status})") for pk, ms, usd, status in attempts]
    return charts.merge_cost_chart(bars, "merge time and LLM cost per merge of this ticket")


def tickets_chart(tickets: list[Ticket]) -> str:
    """The tickets of a list page, oldest first: total merge time and LLM cost of each."""
    ids = [t.pk for t in tickets]
    sums = {row["ticket_id"]: row for row in MergeAttempt.objects.filter(ticket_id__in=ids).values("ticket_id")
            .annotate(ms=Sum("duration_ms"), usd=Sum("llm_cost_usd"))}
    bars = []
    for ticket in sorted(tickets, key=lambda t: t.pk):
        row = sums.get(ticket.pk, {})
        bars.append(charts.Bar(f"#{ticket.pk}", reverse("coordination:ticket_detail", args=[ticket.pk]),
                               row.get("ms") or 0, row.get("usd") or Decimal(0), title=f"#{ticket.pk} {ticket.title}"))
    return charts.merge_cost_chart(bars, "merge time and LLM cost per ticket")
