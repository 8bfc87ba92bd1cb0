"""A ticket with something behind every door: tasks in each state, an event, a conflicted merge waiting for a
person with a text conflict (one hunk settled by a resolver with a rationale), a binary one and a
modify/delete one. ``mark`` goes into every field a person or a task can write, for the escaping tests.

Rows are written directly, as the scheduler and the merge would leave them (see tests/factories.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from coordination.models import Event, Repository, Task, Ticket
from merges.engine.conflicts import parse_hunks
from merges.models import ConflictFile, MergeAttempt
from tests import factories

BASE = "".join(f"line {i}\n" for i in range(1, 21))


@dataclass
class World:
    ticket: Ticket
    task: Task  # a failed one, whose page offers a retry
    attempt: MergeAttempt
    text_file: ConflictFile


def dashboard_pages(world: World) -> list[str]:
    """Every page and fragment of the dashboard that shows the world's rows, and its admin pages."""
    t, a, f = world.ticket.pk, world.attempt.pk, world.text_file.pk
    urls = [reverse("coordination:ticket_list"), reverse("coordination:reviews")]
    urls += [reverse(f"coordination:{name}", args=[t]) for name in ("ticket_detail", "live_poll", "cancel_ticket")]
    urls += [reverse("coordination:task_detail", args=[t, task.key]) for task in world.ticket.tasks.all()]
    urls += [reverse("coordination:retry_task", args=[t, world.task.key])]
    urls += [reverse("coordination:live_poll", args=[t]) + f"?task={task.pk}" for task in world.ticket.tasks.all()]
    urls += [reverse(f"coordination:{name}", args=[a]) for name in ("merge_attempt", "review", "review_live",
                                                                       "rollback_merge")]
    urls += [reverse("coordination:review_file", args=[a, file.pk]) for file in world.attempt.conflict_files.all()]
    urls += [reverse("admin:coordination_ticket_change", args=[t]), reverse("admin:coordination_task_changelist"),
             reverse("admin:coordination_task_change", args=[world.task.pk]),
             reverse("admin:coordination_event_changelist"), reverse("admin:merges_mergeattempt_change", args=[a]),
             reverse("admin:merges_conflictfile_change", args=[f]), reverse("admin:coordination_ticket_changelist")]
    return urls


def build_world(mark: str = "") -> World:
    repository = factories.make_repository(f"world-{Repository.objects.count()}")  # one per world: paths are unique
    ticket = factories.make_ticket(f"Ticket {mark}", repository, status="awaiting_review",
                                   verify_command=f"make check {mark}", error=f"ticket error {mark}")
    a = factories.make_task(ticket, "A", status="failed", title=f"Set up {mark}", command=f"sh -c 'echo {mark}'",
                            instructions=f"instructions {mark}", error=f"command exited with status 1: {mark}",
                            log=f"output {mark}\n", owned_files=[f"src/{mark or 'a'}"],
                            result={"exit_code": 1, "output_tail": f"tail {mark}", "data": {"note": mark}})
    b = factories.make_task(ticket, "B", status="succeeded", title=f"Short {mark}", head_sha=factories.SHA,
                            result={"data": {"say": mark}, "changed_files": [f"b-{mark}.txt"]})
    c = factories.make_task(ticket, "C", status="succeeded", title=f"Long {mark}", head_sha=factories.SHA)
    d = factories.make_task(ticket, "D", [b, c], title=f"Integrate {mark}", command="true",
                            synthesis_context={"merged": {"say": mark}})
    d.join.status = "awaiting_review"
    d.join.save()
    Event.record(ticket, "task.log", {"task": "A", "task_id": a.pk, "bytes": 1, "note": mark})
    attempt = MergeAttempt.objects.create(
        ticket=ticket, join=d.join, target_ref=ticket.ref, base_sha=factories.SHA, status="conflicted",
        incoming=[{"name": n, "branch": f"ticket/{ticket.pk}-task/{n}", "sha": factories.SHA} for n in "BC"],
        merge_order=["B"], pending_sources=["C"], conflict_scores={"B": 0, "C": 2}, conflict_tree="f" * 40,
        partial_sha=factories.SHA, review_reason=f"the agent's resolution does not parse {mark}",
        resolvers={"config.txt": "llm"})
    merged = BASE.replace("line 5\n", f"<<<<<<< ours\nours {mark}\n||||||| base\nline 5\n=======\ntheirs {mark}\n"
                                      ">>>>>>> theirs\n")
    merged = merged.replace("line 15\n", "<<<<<<< ours\nA = 5\n||||||| base\nline 15\n=======\nA = 9\n>>>>>>> theirs\n")
    text_file = ConflictFile.objects.create(
        attempt=attempt, path=f"config-{mark}.txt" if mark else "config.txt", kind="content", source="C",
        base_text=BASE, merged_text=merged, ours_text=BASE.replace("line 5", f"ours {mark}"),
        theirs_text=BASE.replace("line 5", f"theirs {mark}"), hunks=[h.as_dict() for h in parse_hunks(merged)],
        hunk_count=2, base_oid="1" * 40, ours_oid="2" * 40, theirs_oid="3" * 40,
        proposed_resolution=BASE.replace("line 5", f"both {mark}"), proposed_by="llm",
        validation={"ok": False, "reason": f"does not parse {mark}"},
        resolutions=[{"index": 0, "tier": "llm", "resolver": "llm", "rationale": f"kept both {mark}",
                      "lines": [f"ours {mark}", f"theirs {mark}"]},
                     {"index": 1, "tier": "", "resolver": "", "rationale": "", "lines": None}])
    ConflictFile.objects.create(attempt=attempt, path=f"logo-{mark}.png" if mark else "logo.png", kind="binary",
                                source="C", base_oid="4" * 40, ours_oid="5" * 40, theirs_oid="6" * 40, hunk_count=1)
    ConflictFile.objects.create(attempt=attempt, path="old.txt", kind="modify/delete", source="C", base_oid="7" * 40,
                                ours_oid="8" * 40, theirs_oid="", base_text=f"old {mark}\n",
                                ours_text=f"old, changed {mark}\n", hunk_count=1)
    return World(ticket, a, attempt, text_file)
