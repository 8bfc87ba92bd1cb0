"""Small hand-written factories: rows written directly, no scheduler, no git.

Named users with stated rights: alice is a reviewer (acts on merges and tasks, sees the admin), bob is a
viewer (reads everything, changes nothing), charlie is signed in but in neither group (sees nothing), and
anonymous is nobody at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AnonymousUser, Group, User

from coordination.models import Join, Repository, Task, Ticket
from coordination.web.permissions import REVIEWERS, VIEWERS, ensure_groups
from merges.engine.conflicts import parse_hunks
from merges.models import ConflictFile, MergeAttempt

SHA = "0123456789abcdef0123456789abcdef01234567"
PASSWORD = "correct horse battery"  # see with_password


def _member(username: str, group: str | None, **fields) -> User:
    user, _ = User.objects.get_or_create(username=username, defaults=fields)
    if group:
        ensure_groups()
        user.groups.add(Group.objects.get(name=group))
    return user


def alice() -> User:
    return _member("alice", REVIEWERS, is_staff=True)


def bob() -> User:
    return _member("bob", VIEWERS)


def dave() -> User:
    """A second reviewer, for what two reviewers on one merge see of each other."""
    return _member("dave", REVIEWERS)


def charlie() -> User:
    return _member("charlie", None)


def with_password(user: User) -> User:
    """Give a named user ``PASSWORD`` (hashing is slow, so only tests that use the login form do)."""
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    return user


def anonymous() -> AnonymousUser:
    return AnonymousUser()


def make_repository(name: str = "demo") -> Repository:
    return Repository.objects.create(name=name, url_or_path=f"/srv/git/{name}.git")


def make_ticket(title: str = "Add login", repository: Repository | None = None, **fields) -> Ticket:
    fields = {"base_sha": SHA, "head_sha": SHA, **fields}
    return Ticket.objects.create(repository=repository or make_repository(), title=title, base_branch="main",
                                 **fields)


def make_task(ticket: Ticket, key: str, parents: Iterable[Task] = (), **fields) -> Task:
    """One task; with two or more parents its join registers itself, as it does in the app."""
    task = Task.objects.create(ticket=ticket, key=key, title=fields.pop("title", f"Do {key}"), **fields)
    task.depends_on.set(parents)
    return task


def make_dag(ticket: Ticket, parents_of: Mapping[str, Iterable[str]], **fields) -> dict[str, Task]:
    """Many tasks at once ({key: parent keys}, parents listed first), with a Join for every task with
    two or more parents: bulk inserts, for DAGs too big to build a row at a time."""
    tasks = Task.objects.bulk_create(
        Task(ticket=ticket, key=key, title=f"Do {key}", **fields) for key in parents_of)
    by_key = {t.key: t for t in tasks}
    Edge = Task.depends_on.through
    Edge.objects.bulk_create(
        Edge(from_task=by_key[key], to_task=by_key[parent]) for key, parents in parents_of.items()
        for parent in parents)
    for key, parents in parents_of.items():
        if len(list(parents)) >= 2:
            join = Join.objects.create(ticket=ticket, continuation=by_key[key])
            join.sources.set([by_key[p] for p in parents])
    return by_key


CONFLICT_BASE = "".join(f"line {i}\n" for i in range(1, 31))


def conflicted(base: str, changes: dict[int, tuple[str, str]]) -> str:
    """git's merged text in diff3 style: each changed line a hunk, ours / base / theirs."""
    out = []
    for number, line in enumerate(base.splitlines(), start=1):
        if number in changes:
            ours, theirs = changes[number]
            out += ["<<<<<<< ours", ours, "||||||| base", line, "=======", theirs, ">>>>>>> theirs"]
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def conflicted_attempt() -> MergeAttempt:
    """A merge waiting for a person, as a conflict would leave it (no git): config.txt with three hunks (the
    first proposed by a resolver), a binary and a modify/delete card; B and C meant different timeouts."""
    ticket = make_ticket("Review page", status="awaiting_review")
    b = make_task(ticket, "B", status="succeeded", title="Short timeouts", instructions="Make every timeout 5 seconds.")
    c = make_task(ticket, "C", status="succeeded", title="Long timeouts", instructions="Make every timeout 9 seconds.")
    d = make_task(ticket, "D", [b, c], title="Integrate")
    d.join.status = "awaiting_review"
    d.join.save()
    attempt = MergeAttempt.objects.create(
        ticket=ticket, join=d.join, target_ref=ticket.ref, base_sha=SHA, status="conflicted",
        incoming=[{"name": n, "branch": n.lower(), "sha": SHA} for n in "BC"],
        merge_order=["B"], pending_sources=["C"], conflict_tree="f" * 40, partial_sha=SHA,
        review_reason="no ANTHROPIC_API_KEY configured: the conflict goes to a person")
    merged = conflicted(CONFLICT_BASE, {5: ("A = 5", "A = 9"), 15: ("B = 5", "B = 9"), 25: ("C = 5", "C = 9")})
    merged = merged.replace("line 1\n", "line 1 (clean change)\n", 1)
    hunks = [h.as_dict() for h in parse_hunks(merged)]
    ConflictFile.objects.create(
        attempt=attempt, path="config.txt", kind="content", source="C", base_text=CONFLICT_BASE,
        merged_text=merged, ours_text=CONFLICT_BASE, theirs_text=CONFLICT_BASE, hunks=hunks, hunk_count=3,
        base_oid="1" * 40, ours_oid="2" * 40, theirs_oid="3" * 40,
        resolutions=[{"index": 0, "tier": "resolver", "resolver": "union", "rationale": "",
                      "lines": ["A = 5", "A = 9"]},
                     {"index": 1, "tier": "", "resolver": "", "rationale": "", "lines": None},
                     {"index": 2, "tier": "", "resolver": "", "rationale": "", "lines": None}])
    ConflictFile.objects.create(
        attempt=attempt, path="logo.png", kind="binary", source="C", base_oid="4" * 40, ours_oid="5" * 40,
        theirs_oid="6" * 40, hunk_count=1)
    ConflictFile.objects.create(
        attempt=attempt, path="old.txt", kind="modify/delete", source="C", base_oid="7" * 40, ours_oid="8" * 40,
        theirs_oid="", base_text="old\n", ours_text="old, changed\n", hunk_count=1)
    return attempt
