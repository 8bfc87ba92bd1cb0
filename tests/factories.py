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
