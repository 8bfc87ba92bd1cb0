"""Small hand-written factories: rows written directly, no scheduler, no git.

Named users with stated rights: alice is a superuser (reviews merges, sees the admin), bob is a
signed-in viewer, and anonymous is nobody at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AnonymousUser, User

from coordination.models import Join, Repository, Task, Ticket

SHA = "0123456789abcdef0123456789abcdef01234567"


def alice() -> User:
    user, _ = User.objects.get_or_create(username="alice", defaults={"is_staff": True, "is_superuser": True})
    return user


def bob() -> User:
    user, _ = User.objects.get_or_create(username="bob")
    return user


def anonymous() -> AnonymousUser:
    return AnonymousUser()


def make_repository(name: str = "demo") -> Repository:
    return Repository.objects.create(name=name, url_or_path=f"/srv/git/{name}.git")


def make_ticket(title: str = "Add login", repository: Repository | None = None, **fields) -> Ticket:
    return Ticket.objects.create(
        repository=repository or make_repository(), title=title, base_branch="main", base_sha=SHA,
        head_sha=SHA, **fields)


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
