"""A person's decisions on a conflicted merge attempt, and the gate the server keeps before it goes on.

Decisions are recorded per hunk (take ours, theirs, both in either order, the proposal, or an edit) or per
file (for binary, modify/delete, rename and add/add cards), each with who, when and the diff it made, and
each can be undone. ``approve`` refuses while anything is undecided, markers remain, or a file no longer
validates, whatever the page sent.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from merges.attempts import MergePlan, continue_attempt
from merges.engine.conflicts import TEXT_KINDS, ConflictDetail, Hunk
from merges.engine.git import Git, MergeTreeResult
from merges.engine.settling import LadderPolicy, settle
from merges.engine.validation import validate_text
from merges.models import ConflictFile, MergeAttempt, ReviewAction
from merges.recorded import remember_decisions

HUNK_CHOICES = ("ours", "theirs", "both_ours_first", "both_theirs_first", "proposal", "edit")
FILE_CHOICES = ("ours", "theirs", "delete", "keep", "proposal", "edit")


class ReviewError(ValueError):
    """A decision that cannot be taken (unknown choice, hunk, or an attempt not awaiting review)."""


class Stale(ReviewError):
    """What the page showed was decided again since (by another reviewer): nothing was written."""


class GateClosed(ReviewError):
    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def current_files(attempt: MergeAttempt):
    return attempt.conflict_files.filter(round=attempt.round).order_by("path")


# -- deciding ---------------------------------------------------------------------------------------


def decide_hunk(conflict_file_id: int, hunk_index: int, choice: str, user, text: str | None = None,
                seen: str | None = None) -> ConflictFile:
    """``seen``: the hunk's ``version`` the page showed; when it was decided again since, Stale."""
    with transaction.atomic():
        conflict = _open_file(conflict_file_id)
        hunks = conflict.hunks
        if not 0 <= hunk_index < len(hunks):
            raise ReviewError(f"{conflict.path} has no hunk {hunk_index + 1}")
        _check_seen(conflict, seen, hunk_index)
        hunk = hunks[hunk_index]
        proposal = hunk_decisions(conflict)[hunk_index].get("lines")
        lines = {
            "ours": hunk["ours"],
            "theirs": hunk["theirs"],
            "both_ours_first": hunk["ours"] + hunk["theirs"],
            "both_theirs_first": hunk["theirs"] + hunk["ours"],
            "proposal": proposal,
            "edit": None if text is None else text.split("\n"),
        }.get(choice, False)
        if lines is False:
            raise ReviewError(f"unknown choice {choice!r}; expected one of {', '.join(HUNK_CHOICES)}")
        if lines is None:
            raise ReviewError("nothing to take: " + ("no proposal for this hunk" if choice == "proposal"
                                                     else "an edit needs its text"))
        before = result_text(conflict)
        resolutions = hunk_decisions(conflict)
        previous = resolutions[hunk_index]
        resolutions[hunk_index] = {
            "index": hunk_index, "tier": "human", "resolver": f"human:{user.get_username()}", "choice": choice,
            "rationale": "", "lines": list(lines), "decided_at": timezone.now().isoformat(),
            "previous": {k: v for k, v in previous.items() if k != "previous"},
        }
        conflict.resolutions = resolutions
        _mark_decided(conflict, user, "edited" if choice == "edit" else "approved")
        _log(conflict, user, "decide_hunk", {"hunk": hunk_index, "choice": choice}, before)
    return conflict


def undo_hunk(conflict_file_id: int, hunk_index: int, user, seen: str | None = None) -> ConflictFile:
    """Put back what the hunk was before the person's last decision (a resolver's, the agent's, or open)."""
    with transaction.atomic():
        conflict = _open_file(conflict_file_id)
        resolutions = hunk_decisions(conflict)
        if not 0 <= hunk_index < len(resolutions) or resolutions[hunk_index].get("tier") != "human":
            raise ReviewError(f"{conflict.path}: hunk {hunk_index + 1} has no decision of a person to undo")
        _check_seen(conflict, seen, hunk_index)
        before = result_text(conflict)
        resolutions[hunk_index] = resolutions[hunk_index].get("previous") or _open_hunk(hunk_index)
        conflict.resolutions = resolutions
        conflict.save(update_fields=["resolutions"])
        _log(conflict, user, "undo_hunk", {"hunk": hunk_index}, before)
    return conflict


def decide_file(conflict_file_id: int, choice: str, user, text: str | None = None,
                seen: str | None = None) -> ConflictFile:
    """A whole-file decision: the cards for binary, modify/delete, rename and add/add conflicts, and the
    result pane's edit. ``seen``: the file's ``version`` the page showed."""
    with transaction.atomic():
        conflict = _open_file(conflict_file_id)
        if choice not in FILE_CHOICES:
            raise ReviewError(f"unknown choice {choice!r}; expected one of {', '.join(FILE_CHOICES)}")
        _check_seen(conflict, seen, None)
        existing = conflict.ours_oid or conflict.theirs_oid
        content = {
            "ours": conflict.ours_text, "theirs": conflict.theirs_text, "proposal": conflict.proposed_resolution,
            "edit": text, "keep": conflict.ours_text if conflict.ours_oid else conflict.theirs_text,
        }.get(choice)
        side_oid = {"ours": conflict.ours_oid, "theirs": conflict.theirs_oid, "keep": existing}.get(choice, "")
        if choice in ("ours", "theirs", "keep") and not side_oid:
            choice, content = "delete", None  # taking the side that deleted the file
        if choice != "delete" and content is None and not side_oid:
            raise ReviewError(f"{conflict.path}: nothing to take for {choice!r}")
        before = result_text(conflict)
        conflict.result_deleted = choice == "delete"
        conflict.result_text = content
        conflict.result_oid = side_oid if content is None and choice != "delete" else ""  # a binary side
        decisions = hunk_decisions(conflict) or [{"index": 0}]  # a card has no hunk: one decision, the file's
        conflict.resolutions = [dict(r, tier="human", resolver=f"human:{user.get_username()}", choice=choice,
                                     decided_at=timezone.now().isoformat()) for r in decisions]
        _mark_decided(conflict, user, "edited" if choice == "edit" else "approved",
                      extra=["result_text", "result_deleted", "result_oid"])
        _log(conflict, user, "decide_file", {"choice": choice, "side_oid": side_oid or ""}, before)
    return conflict


def _open_file(conflict_file_id: int) -> ConflictFile:
    conflict = ConflictFile.objects.select_for_update(no_key=True).select_related("attempt").get(pk=conflict_file_id)
    attempt = conflict.attempt
    if attempt.status != "conflicted" or conflict.round != attempt.round:
        raise ReviewError(f"merge #{attempt.pk} is not waiting for a decision on {conflict.path}")
    return conflict


def version(conflict: ConflictFile, hunk_index: int | None = None) -> str:
    """A fingerprint of what a decision would replace: one hunk's decision (and any whole-file decision
    over it), or, for ``None``, the file's whole result. A page's form carries the one it showed, so that a
    reviewer who decides on what another has changed meanwhile is told, not silently overruled."""
    whole = [conflict.result_text, conflict.result_deleted, conflict.result_oid]
    state = [hunk_decisions(conflict)[hunk_index], whole] if hunk_index is not None else [
        conflict.resolutions, whole]
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_seen(conflict: ConflictFile, seen: str | None, hunk_index: int | None) -> None:
    """Raise Stale when the page's ``seen`` is not what the row holds now (None: no page, no check)."""
    if seen is None or seen == version(conflict, hunk_index):
        return
    last = ReviewAction.objects.filter(conflict_file=conflict).select_related("user").order_by("-id").first()
    what = f"hunk {hunk_index + 1} of {conflict.path}" if hunk_index is not None else conflict.path
    who = ""
    if last is not None:
        name = last.user.get_username() if last.user else "someone"
        who = f" by {name} at {timezone.localtime(last.created_at):%Y-%m-%d %H:%M:%S}"
    raise Stale(f"{what} was decided{who} after this page showed it: nothing was saved")


def hunk_decisions(conflict: ConflictFile) -> list[dict]:
    """One decision per hunk (tier "" = open), padded for hunks nothing has decided yet. A card (no hunk)
    has none: its one decision is the file's (see ``provenance``)."""
    existing = list(conflict.resolutions or [])[:len(conflict.hunks)]
    return existing + [_open_hunk(i) for i in range(len(existing), len(conflict.hunks))]


def _open_hunk(index: int) -> dict:
    return {"index": index, "tier": "", "resolver": "", "rationale": "", "lines": None}


def _mark_decided(conflict: ConflictFile, user, decision: str, extra: Sequence[str] = ()) -> None:
    conflict.decision, conflict.decided_by, conflict.decided_at = decision, user, timezone.now()
    conflict.save(update_fields=["resolutions", "decision", "decided_by", "decided_at", *extra])


def _log(conflict: ConflictFile, user, action: str, detail: dict, before: str | None) -> None:
    after = result_text(conflict)
    diff = "".join(difflib.unified_diff((before or "").splitlines(True), (after or "").splitlines(True),
                                        f"a/{conflict.path}", f"b/{conflict.path}"))
    ReviewAction.objects.create(attempt=conflict.attempt, conflict_file=conflict, user=user, action=action,
                                detail={**detail, "path": conflict.path, "diff": diff})


# -- reading the result ------------------------------------------------------------------------------


def result_text(conflict: ConflictFile) -> str | None:
    """The file as decided so far: git's merged text with decided hunks replaced (undecided hunks keep
    their markers), or a whole-file decision. None: the path is deleted or has no text."""
    if conflict.result_deleted:
        return None
    if conflict.result_text is not None:
        return conflict.result_text
    if conflict.merged_text is None or conflict.kind not in TEXT_KINDS:
        return None
    lines = conflict.merged_text.split("\n")
    out: list[str] = []
    position = 0
    for hunk, decision in zip(conflict.hunks, hunk_decisions(conflict), strict=True):
        out += lines[position : hunk["start"] - 1]
        region = lines[hunk["start"] - 1 : hunk["end"]]
        out += decision["lines"] if is_decided(decision) else region
        position = hunk["end"]
    return "\n".join(out + lines[position:])


def is_decided(decision: dict) -> bool:
    """A hunk counts as decided when some tier settled it with lines of its own."""
    return bool(decision.get("tier")) and decision.get("lines") is not None


def remaining_hunks(conflict: ConflictFile) -> int:
    if conflict.result_text is not None or conflict.result_deleted or conflict.result_oid:
        return 0
    if conflict.kind not in TEXT_KINDS:
        return 1
    return sum(1 for d in hunk_decisions(conflict) if not is_decided(d))


def gate_problems(attempt: MergeAttempt) -> list[str]:
    """Why the attempt may not go on yet; empty when it may."""
    if attempt.status != "conflicted":
        return [f"merge #{attempt.pk} is {attempt.status}, not waiting for review"]
    problems = []
    for conflict in current_files(attempt):
        left = remaining_hunks(conflict)
        if left:
            problems.append(f"{conflict.path}: {left} undecided")
            continue
        text = result_text(conflict)
        if text is None:
            if not (conflict.result_deleted or conflict.result_oid):
                problems.append(f"{conflict.path}: no decision")
            continue
        verdict = validate_text(conflict.path, text)
        if not verdict.ok:
            problems.append(verdict.reason)
    return problems


# -- going on ----------------------------------------------------------------------------------------


ACTIONS = ("approve", "retry", "drop")


def request_action(attempt_id: int, kind: str, user, *, hint: str = "", source: str = "") -> MergeAttempt:
    """Queue a reviewer's approve / retry with a hint / drop a source: checked and taken under the row lock
    (the attempt goes ``running``, so a second action or a late decision finds it busy); ``carry_out`` does
    the git work later, on a worker. Raises GateClosed or ReviewError with the reason."""
    if kind not in ACTIONS:
        raise ReviewError(f"unknown review action {kind!r}")
    with transaction.atomic():
        attempt = MergeAttempt.objects.select_for_update(no_key=True).get(pk=attempt_id)
        if kind == "approve":
            problems = gate_problems(attempt)
            if problems:
                raise GateClosed(problems)
        elif attempt.status != "conflicted":
            raise ReviewError(f"merge #{attempt.pk} is {attempt.status}, not waiting for review")
        if kind == "retry" and not attempt.conflict_tree:
            raise ReviewError(f"merge #{attempt.pk} has no conflict to retry")
        if kind == "drop" and (not attempt.pending_sources or attempt.pending_sources[0] != source):
            raise ReviewError(f"{source} is not the conflicting source of merge #{attempt.pk}")
        detail: dict = {"round": attempt.round, "review_reason": attempt.review_reason}  # the round's record
        if kind == "approve":
            files = list(current_files(attempt))
            detail |= {"paths": sorted(c.path for c in files),
                       "recorded_resolutions": remember_decisions(attempt, files, user)}
        elif kind == "retry":
            detail["hint"] = hint
        else:
            detail["source"] = source
        action = {"approve": "approve", "retry": "retry_with_hint", "drop": "drop_source"}[kind]
        ReviewAction.objects.create(attempt=attempt, user=user, action=action, detail=detail)
        attempt.status = "running"
        attempt.pending_action = {"kind": kind, "user_id": user.pk, "round": attempt.round, "hint": hint,
                                  "source": source}
        attempt.save(update_fields=["status", "pending_action"])
    return attempt


def carry_out(git: Git, attempt_id: int, plan: MergePlan) -> MergeAttempt:
    """Do the queued action's git work. Idempotent: a redelivered job finds nothing queued and leaves; a
    job re-run after its worker died starts the action again from the decided round."""
    attempt = MergeAttempt.objects.get(pk=attempt_id)
    action = attempt.pending_action
    if attempt.status != "running" or not action:
        return attempt
    attempt.conflict_files.filter(round__gt=attempt.round).delete()  # what a dead run had started
    attempt.pending_action = {}
    if action["kind"] == "retry":
        return _retry(git, attempt, action, plan)
    if action["kind"] == "drop":
        attempt.incoming = [i for i in attempt.incoming if i["name"] != action["source"]]
        attempt.pending_sources = attempt.pending_sources[1:]
        return continue_attempt(git, attempt, plan, None, "")
    if not attempt.conflict_tree:  # the round was a failed verify command: the person accepts the tree
        plan.verify = None
        return continue_attempt(git, attempt, plan, None, "")
    resolved = {c.path: _resolved_content(c) for c in current_files(attempt)}
    user = get_user_model().objects.filter(pk=action["user_id"]).first()
    who = user.get_username() if user else "a reviewer"
    return continue_attempt(git, attempt, plan, resolved, f"Conflicts settled by {who}.")


def _resolved_content(conflict: ConflictFile) -> tuple[str, bytes | str] | None:
    if conflict.result_oid:
        return conflict.mode, conflict.result_oid
    text = result_text(conflict)
    return None if text is None else (conflict.mode, text.encode())


def _retry(git: Git, attempt: MergeAttempt, action: dict, plan: MergePlan) -> MergeAttempt:
    """Ask the agent again with the reviewer's note; its new proposal is shown, nothing is committed.
    Proposals are written only onto the round the reviewer saw; the attempt waits for review again."""
    files = list(current_files(attempt))
    details = [_detail(c) for c in files]
    # The reviewer asked for the agent: the threshold no longer applies; the key and the budget still do.
    policy = LadderPolicy(rule_set=plan.policy.rule_set, conflict_threshold=10**9, review_policy="threshold",
                          llm=plan.policy.llm, budget=plan.policy.budget, worktree_root=plan.policy.worktree_root)
    conflict = MergeTreeResult(tree=attempt.conflict_tree, clean=False)
    sides = [plan.sides[n] for n in (*attempt.merge_order, attempt.pending_sources[0]) if n in plan.sides]
    settlement = settle(git, conflict, attempt.partial_sha, details, policy, sides, hint=action["hint"])
    with transaction.atomic():
        attempt = MergeAttempt.objects.select_for_update(no_key=True).get(pk=attempt.pk)
        if attempt.status != "running" or attempt.round != action["round"]:
            return attempt  # someone else moved it on: this proposal is for a round nobody is deciding
        attempt.llm_invocations += settlement.llm_invocations
        attempt.llm_cost_usd += type(attempt.llm_cost_usd)(str(settlement.llm_cost_usd))
        attempt.review_reason = settlement.review_reason or "the agent proposed a resolution: a person approves it"
        attempt.status, attempt.pending_action = "conflicted", {}
        attempt.save(update_fields=["llm_invocations", "llm_cost_usd", "review_reason", "status", "pending_action"])
        for row, file in zip(files, settlement.files, strict=True):
            row.resolutions, row.proposed_resolution = file.hunks, file.text
            row.proposed_by = file.proposed_by
            row.validation = file.validation.as_dict() if file.validation else {}
            row.save(update_fields=["resolutions", "proposed_resolution", "proposed_by", "validation"])
        ReviewAction.objects.create(attempt=attempt, user_id=action["user_id"], action="retry_result",
                                    detail={"hint": action["hint"], "outcome": settlement.review_reason or "proposed",
                                            "llm_error": settlement.llm_error, "round": attempt.round})
    return attempt


def _detail(conflict: ConflictFile) -> ConflictDetail:
    return ConflictDetail(
        path=conflict.path, kind=conflict.kind, base_oid=conflict.base_oid, ours_oid=conflict.ours_oid,
        theirs_oid=conflict.theirs_oid, base_text=conflict.base_text, ours_text=conflict.ours_text,
        theirs_text=conflict.theirs_text, merged_text=conflict.merged_text,
        hunks=[Hunk(h["start"], h["ours"], h["base"], h["theirs"], h.get("end", 0), True) for h in conflict.hunks],
        messages=conflict.git_messages, mode=conflict.mode,
    )
