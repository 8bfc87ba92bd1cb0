"""Submitting a ticket: check everything first, then write it all in one transaction."""

from __future__ import annotations

from django.db import transaction

from coordination.domain import dispatch, states
from coordination.domain.dispatch import Job
from coordination.domain.ownership import predicted_overlaps
from coordination.domain.spec import SpecError, TaskSpec, TicketSpec, check_dag, parse_task
from coordination.models import Event, Join, Repository, SubmittedSpec, Task, Ticket
from coordination.running import workspace
from coordination.scheduling import publishing, scheduler
from coordination.scheduling.joins import ensure_join
from merges.engine.git import RefMoved


def submit_ticket(spec: TicketSpec, user=None) -> Ticket:
    """Store the ticket, its tasks and joins, create ``ticket/<id>`` and start the scheduler.

    Raises SpecError (one line naming the culprit) with nothing written to the database.
    """
    try:
        source = workspace.normalize_source(spec.repository)
        base_sha = workspace.remote_branch_sha(source, spec.base_branch)
    except workspace.RepositoryError as exc:
        raise SpecError(str(exc)) from None
    repository, _ = Repository.objects.get_or_create(
        url_or_path=source, defaults={"name": _repository_name(source), "default_branch": spec.base_branch})
    # Git first, outside any transaction: the fetch, and the files overlapping claims are checked against.
    if workspace.sync_clone(repository.pk, source, spec.base_branch) != base_sha:
        raise SpecError(f"base branch '{spec.base_branch}' moved while submitting; submit again")
    files = scheduler.repository_files(repository.pk, base_sha)
    with transaction.atomic():
        ticket = Ticket.objects.create(
            repository=repository, title=spec.title, base_branch=spec.base_branch,
            base_sha=base_sha, head_sha=base_sha, conflict_threshold=spec.conflict_threshold,
            review_policy=spec.review_policy, verify_command=spec.verify_command,
            llm_max_invocations=spec.llm_max_invocations, llm_max_usd=spec.llm_max_usd, created_by=user,
            serialize_overlaps=spec.serialize_overlaps, sandbox_backend=spec.sandbox, network=spec.network,
        )
        SubmittedSpec.objects.create(ticket=ticket, spec=spec.raw)
        Event.record(ticket, "ticket.submitted", {"title": ticket.title, "base_sha": base_sha,
                                                  "tasks": [t.key for t in spec.tasks]})
        by_key = {t.key: t for t in spec.tasks}
        order = check_dag({t.key: t.depends_on for t in spec.tasks})  # parents before children
        _handle_predicted_overlaps(ticket, spec, order, files)
        _add_spec_tasks(ticket, [by_key[key] for key in order])
    # The ticket branch is created once the rows are committed; nothing is scheduled before it exists.
    try:
        workspace.clone_git(repository.pk).update_ref(ticket.ref, base_sha, None, "dagmerge: ticket created")
    except RefMoved:
        ticket.delete()
        raise SpecError(f"{ticket.branch} already exists in the workspace; is another dagmerge using it?") from None
    dispatch.submit(Job.ADVANCE, ticket.pk)
    publishing.publish_ticket(ticket.pk)
    return ticket


def _add_spec_tasks(ticket: Ticket, specs: list[TaskSpec]) -> None:
    """A new ticket's tasks (parents first, checked by ``check_dag``): the rows and events ``add_task`` writes,
    in one insert per table. One task at a time is a dozen queries each — minutes for a 5,000-task spec, all
    inside the transaction that holds SQLite's write lock, which every worker then waits for."""
    tasks = Task.objects.bulk_create(
        Task(ticket=ticket, key=s.key, title=s.title, instructions=s.instructions, executor=s.executor,
             command=s.command, owned_files=s.owned_files, timeout_seconds=s.timeout_seconds, network=s.network,
             max_attempts=s.max_attempts)
        for s in specs)
    by_key = {task.key: task for task in tasks}
    Edge = Task.depends_on.through
    Edge.objects.bulk_create(Edge(from_task=by_key[s.key], to_task=by_key[parent])
                             for s in specs for parent in s.depends_on)  # no signal: the joins come next
    # bulk_create sends no post_save, so these events are not announced: nobody can be watching a ticket
    # that is being created (the relay of the embedded set-up finds them in the table all the same).
    Event.objects.bulk_create(Event(ticket=ticket, kind="task.created",
                                    payload={"task": s.key, "task_id": by_key[s.key].pk, "depends_on": s.depends_on})
                              for s in specs)
    for s in specs:
        if len(s.depends_on) >= 2:
            ensure_join(by_key[s.key])
            if s.join_strategy != "all":
                Join.objects.filter(continuation=by_key[s.key]).update(merge_strategy=s.join_strategy)


def add_task(ticket: Ticket, spec: TaskSpec) -> Task:
    """Create a task under ``ticket``; its join (two or more parents) registers itself.

    Parents must exist already, so the only cycle a task added to a running ticket could make is itself."""
    if spec.key in spec.depends_on:
        raise SpecError(f"task {spec.key} depends on itself")
    parents = list(ticket.tasks.filter(key__in=spec.depends_on))
    missing = set(spec.depends_on) - {p.key for p in parents}
    if missing:
        raise SpecError(f"task {spec.key} depends on unknown task '{sorted(missing)[0]}'")
    if ticket.tasks.filter(key=spec.key).exists():
        raise SpecError(f"duplicate task key '{spec.key}'")
    task = Task.objects.create(
        ticket=ticket, key=spec.key, title=spec.title, instructions=spec.instructions, executor=spec.executor,
        command=spec.command, owned_files=spec.owned_files, timeout_seconds=spec.timeout_seconds,
        network=spec.network, max_attempts=spec.max_attempts,
    )
    Event.record(ticket, "task.created", {"task": task.key, "task_id": task.pk, "depends_on": spec.depends_on})
    task.depends_on.set(parents)  # registers the join, if any
    if spec.join_strategy != "all":
        Join.objects.filter(continuation=task).update(merge_strategy=spec.join_strategy)
    return task


def _handle_predicted_overlaps(ticket: Ticket, spec: TicketSpec, order: list[str], files: tuple[str, ...]) -> None:
    """Tasks that may run in parallel but claim the same files: warn, or (serialize_overlaps) make the
    later one depend on the earlier. At run time overlapping claims wait for each other either way."""
    ancestors: dict[str, set[str]] = {}
    by_key = {t.key: t for t in spec.tasks}
    for key in order:
        ancestors[key] = set(by_key[key].depends_on).union(*(ancestors[d] for d in by_key[key].depends_on))
    position = {key: i for i, key in enumerate(order)}

    def may_run_in_parallel(a: str, b: str) -> bool:
        return a not in ancestors[b] and b not in ancestors[a]

    for overlap in predicted_overlaps({t.key: t.owned_files for t in spec.tasks}, may_run_in_parallel, files):
        earlier, later = sorted((overlap.task, overlap.other), key=position.__getitem__)
        payload = {"tasks": [earlier, later], "example": overlap.example,
                   "patterns": [overlap.pattern, overlap.other_pattern]}
        if spec.serialize_overlaps and may_run_in_parallel(earlier, later):
            by_key[later].depends_on.append(earlier)
            ancestors[later] |= {earlier} | ancestors[earlier]
            Event.record(ticket, "ticket.serialized", payload)
        elif not spec.serialize_overlaps:
            Event.record(ticket, "ticket.overlap_warning", payload)


class TicketClosed(Exception):
    pass


def add_discovered_task(ticket_id: int, raw: object) -> Task:
    """A running task adds work to its own ticket; its join registers itself, the scheduler picks it up.

    Raises SpecError (bad spec, not a mapping, unknown dependency, duplicate key) or TicketClosed, writing nothing.
    """
    spec = parse_task(raw)
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update(no_key=True).get(pk=ticket_id)
        if ticket.status in states.TICKET_IDLE:
            raise TicketClosed(f"ticket {ticket.pk} is {ticket.status}; it takes no new tasks")
        task = add_task(ticket, spec)
        dispatch.submit(Job.ADVANCE, ticket.pk)
    return task


def _repository_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or source
