"""Running a convergence merge as an audited MergeAttempt, climbing the conflict ladder, and moving the
target ref by compare-and-swap only when everything is settled and verified."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from merges.engine.conflicts import describe_conflicts
from merges.engine.convergence import Source, converge
from merges.engine.git import Git, GitError, RefMoved
from merges.engine.llm import SideIntent
from merges.engine.settling import LadderPolicy, Settlement, settle
from merges.engine.verify import VerifyCommand, verify_tree
from merges.models import ConflictFile, MergeAttempt
from merges.recovery import recovery_ref

log = logging.getLogger(__name__)


@dataclass
class MergePlan:
    """Everything an attempt needs besides the repository: who the sources are and the policy."""

    sources: Sequence[Source]
    branches: Mapping[str, str] = field(default_factory=dict)
    sides: Mapping[str, SideIntent] = field(default_factory=dict)
    policy: LadderPolicy = field(default_factory=LadderPolicy)
    verify: VerifyCommand | None = None
    current_head: str | None = None  # where the target is now, if it moved on while a person reviewed
    still_leased: Callable[[], bool] = field(default=lambda: True)  # False once the merge lost its lease


class LeaseLost(Exception):
    """The merge's lease lapsed before the ref moved: the attempt is left running for the sweep to recover."""


def run_attempt(git: Git, plan: MergePlan, *, ticket_id: int, target_ref: str, expected_head: str,
                join_id: int | None = None, task_id: int | None = None, ref_seen: str | None = None) -> MergeAttempt:
    """Merge the plan's sources onto ``expected_head``; on success move ``target_ref`` from it (CAS).

    A conflict no tier may settle leaves the ref untouched and records the conflicted files; a ref found
    elsewhere than ``expected_head`` fails the attempt loudly instead of overwriting what someone put there.
    ``ref_seen``: where the caller has just read the ref, under the lease this merge holds (not read again).
    """
    attempt = MergeAttempt.objects.create(
        ticket_id=ticket_id, join_id=join_id, task_id=task_id, target_ref=target_ref, base_sha=expected_head,
        rule_set=plan.policy.rule_set,
        incoming=[{"name": s.name, "branch": plan.branches.get(s.name, ""), "sha": s.sha} for s in plan.sources],
    )
    _guarded(git, attempt, plan, lambda: _start(git, attempt, plan, ref_seen))
    return attempt


def continue_attempt(git: Git, attempt: MergeAttempt, plan: MergePlan,
                     resolved: Mapping[str, tuple[str, bytes | str] | None] | None, note: str) -> MergeAttempt:
    """Carry on after a person settled the current round. ``resolved`` maps each conflicted path to its
    (mode, content or a blob's id), or None to delete it; ``resolved`` None: the conflicting source is not merged
    (dropped, or the round was a failed verification the person accepts). The remaining sources merge as before."""

    def resume() -> None:
        by_name = {s.name: s for s in plan.sources}
        head, rest = attempt.partial_sha, [by_name[n] for n in attempt.pending_sources if n in by_name]
        if resolved is not None:
            source, rest = rest[0], rest[1:]
            tree = git.tree_with(attempt.conflict_tree, dict(resolved))
            head = git.commit_tree(tree, [attempt.partial_sha, source.sha], _message(plan, source, note))
            attempt.merge_order = [*attempt.merge_order, source.name]
        _carry_on(git, attempt, plan, head, rest)

    attempt.round += 1
    attempt.status, attempt.review_reason = "running", ""
    _guarded(git, attempt, plan, resume)
    return attempt


def _guarded(git: Git, attempt: MergeAttempt, plan: MergePlan, step) -> None:
    """Run a step of the attempt; any failure ends the attempt as failed with the reason (never running
    for ever), except a lost lease: then someone else may hold the ticket and the sweep recovers it."""
    try:
        step()
    except LeaseLost:
        return
    except RefMoved as exc:
        attempt.status = "failed"
        attempt.error = f"{attempt.target_ref} moved underneath dagmerge ({exc.stderr}); nothing was overwritten"
    except GitError as exc:
        attempt.status, attempt.error = "failed", str(exc)
    except Exception as exc:  # a bug or an unexpected failure must not leave the join merging for ever
        log.exception("merge #%s failed unexpectedly", attempt.pk)
        attempt.status, attempt.error = "failed", f"{type(exc).__name__}: {exc}"
    attempt.finished_at = timezone.now()
    attempt.save()


def _start(git: Git, attempt: MergeAttempt, plan: MergePlan, ref_seen: str | None) -> None:
    actual = ref_seen or git.rev_parse(attempt.target_ref)
    if actual != attempt.base_sha:
        raise RefMoved(["rev-parse", attempt.target_ref], 1, f"{attempt.target_ref} is at {actual}, "
                       f"expected {attempt.base_sha}")
    _carry_on(git, attempt, plan, attempt.base_sha, list(plan.sources))


def _carry_on(git: Git, attempt: MergeAttempt, plan: MergePlan, head: str, sources: list[Source]) -> None:
    """Converge, settling each conflict on the ladder, until merged or a person must decide."""
    by_name = {s.name: s for s in plan.sources}
    while sources:
        result = converge(git, head, sources, message=lambda s: _message(plan, s))
        attempt.conflict_scores = {**attempt.conflict_scores, **result.scores}
        attempt.pairwise_conflicts = attempt.pairwise_conflicts or result.pairwise
        attempt.merge_order = [*attempt.merge_order, *result.order]
        attempt.merge_tree_runs += result.merge_tree_runs
        attempt.duration_ms += result.duration_ms
        head = result.head
        if result.clean:
            break
        assert result.conflict_source is not None and result.conflict is not None  # not clean: it stopped at one
        source = by_name[result.conflict_source]
        details = describe_conflicts(git, result.conflict)
        sides = [plan.sides[n] for n in (*attempt.merge_order, source.name) if n in plan.sides]
        settlement = settle(git, result.conflict, head, details, plan.policy, sides)
        _record_round(attempt, source.name, settlement)
        if not settlement.settled:
            attempt.status = "failed" if plan.policy.review_policy == "never" else "conflicted"
            attempt.error = settlement.review_reason if attempt.status == "failed" else ""
            attempt.review_reason = settlement.review_reason
            attempt.partial_sha, attempt.conflict_tree = head, result.conflict.tree
            attempt.pending_sources = result.pending
            return
        tree = git.tree_with(result.conflict.tree, settlement.tree_changes())
        how = ", ".join(sorted({f.proposed_by for f in settlement.files}))
        head = git.commit_tree(tree, [head, source.sha], _message(plan, source, f"Conflicts settled by {how}."))
        attempt.merge_order = [*attempt.merge_order, source.name]
        sources = [by_name[n] for n in result.pending[1:]]
    if plan.verify and plan.verify.command:
        verdict = verify_tree(git, head, plan.verify)
        if not verdict.ok:
            attempt.status, attempt.review_reason = "conflicted", verdict.reason
            attempt.partial_sha, attempt.conflict_tree, attempt.pending_sources = head, "", []
            return
    expected = plan.current_head or attempt.base_sha
    if expected != attempt.base_sha:  # the target moved on during the review: bring the result onto it
        onto = converge(git, expected, [Source("reviewed merge", head, fork_point=attempt.base_sha)],
                        message=lambda s: f"Merge reviewed merge #{attempt.pk}\n")
        if not onto.clean:
            _restart_onto(git, attempt, plan, expected)
            return
        head = onto.head
    if not plan.still_leased():
        raise LeaseLost(attempt.pk)
    # The intent is written before the ref moves: a merger that dies in between leaves a running attempt
    # whose result_sha the ref already shows, and the sweep completes it instead of merging again.
    # A recovery point left by an earlier try of this round, whose merger died before the move, or by an
    # older dagmerge (which kept one when an attempt started): moved by compare-and-swap too.
    kept = git.rev_parse(attempt.recovery_ref) if attempt.recovery_ref else None
    attempt.result_sha, attempt.recovery_ref = head, recovery_ref(attempt.pk)
    attempt.save(update_fields=["result_sha", "recovery_ref"])
    moves = [(attempt.recovery_ref, attempt.base_sha, kept)]  # the recovery point moves with the ref, or neither
    if head != expected:
        moves.append((attempt.target_ref, head, expected))
    git.update_refs(moves, message="dagmerge: convergence merge")
    attempt.status = "merged"
    attempt.pending_sources = []


def _restart_onto(git: Git, attempt: MergeAttempt, plan: MergePlan, head: str) -> None:
    """The target moved on during the review and the reviewed merge no longer applies: merge the sources
    again onto the new head, in this (new) round. The reviewer's decisions were recorded at approval, so
    the ``recorded`` resolver settles every conflict that comes back the same; what is left is a new
    review, told why."""
    moved_from = attempt.base_sha
    attempt.base_sha = head
    attempt.merge_order, attempt.conflict_scores, attempt.pairwise_conflicts = [], {}, {}
    plan.current_head = None
    still = {i["name"] for i in attempt.incoming}
    _carry_on(git, attempt, plan, head, [s for s in plan.sources if s.name in still])
    if attempt.status == "conflicted":
        attempt.review_reason = (f"{attempt.target_ref} moved on during the review ({moved_from[:10]} → {head[:10]}) "
                                 "and the reviewed merge no longer applied; decisions that still apply were carried "
                                 f"over, the rest needs a decision: {attempt.review_reason}")


def _message(plan: MergePlan, source: Source, note: str = "") -> str:
    branch = plan.branches.get(source.name, source.name)
    return f"Merge {branch}\n" + (f"\n{note}\n" if note else "")


def _record_round(attempt: MergeAttempt, source: str, settlement: Settlement) -> None:
    attempt.llm_invocations += settlement.llm_invocations
    attempt.llm_cost_usd += Decimal(str(settlement.llm_cost_usd))
    with transaction.atomic():
        if attempt.pk is None:
            attempt.save()
        for file in settlement.files:
            detail = file.detail
            attempt.resolvers[detail.path] = file.proposed_by if settlement.settled else "review"
            ConflictFile.objects.create(
                attempt=attempt, round=attempt.round, path=detail.path, kind=detail.kind, source=source,
                mode=detail.mode, base_oid=detail.base_oid, ours_oid=detail.ours_oid, theirs_oid=detail.theirs_oid,
                base_text=detail.base_text, ours_text=detail.ours_text, theirs_text=detail.theirs_text,
                merged_text=detail.merged_text, hunks=[h.as_dict() for h in detail.hunks],
                hunk_count=detail.hunk_count, git_messages=detail.messages, resolutions=file.hunks,
                proposed_resolution=file.text, proposed_by=file.proposed_by,
                validation=file.validation.as_dict() if file.validation else {},
            )
