"""Submitting specs against real repositories and driving them with in-process workers."""

from __future__ import annotations

from pathlib import Path

from coordination.domain import dispatch
from coordination.domain.spec import validate_spec
from coordination.jobs.dispatchers import ThreadDispatcher
from coordination.jobs.driving import drive
from coordination.models import Ticket
from coordination.scheduling.tickets import submit_ticket
from tests.gitrepo import Repo


class RecordingDispatcher:
    """Keeps the jobs instead of running them: the ticket stays where the test put it."""

    def __init__(self):
        self.jobs: list[tuple[str, int]] = []

    def submit(self, job, object_id: int) -> None:
        self.jobs.append((job.value, object_id))


def source_repo(tmp_path: Path, files: dict[str, str] | None = None) -> Repo:
    repo = Repo(tmp_path / "source")
    repo.commit(files or {"README.md": "# project\n"}, "initial")
    return repo


def sh(script: str) -> str:
    """A shell task command (dagmerge itself never uses a shell: the task asks for one)."""
    return "sh -c " + "'" + script.replace("'", "'\"'\"'") + "'"


def submit(repo: Repo, tasks: list[dict], **ticket_fields) -> Ticket:
    spec = {"title": "test ticket", "repository": str(repo.path), "base_branch": "main", "tasks": tasks,
            **ticket_fields}
    return submit_ticket(validate_spec(spec))


def run_ticket(repo: Repo, tasks: list[dict], workers: int = 3, **ticket_fields) -> Ticket:
    pool = ThreadDispatcher(workers)
    dispatch.use(pool)
    ticket = submit(repo, tasks, **ticket_fields)
    drive(ticket.pk, pool, timeout=60)
    ticket.refresh_from_db()
    return ticket
