"""The ``dagmerge`` command: a door onto the domain functions, for people and for scripts."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from merges import commands as merge_commands

EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_REVIEW = 0, 1, 2, 3
FINAL_FOR_RUN = {"done": EXIT_DONE, "failed": EXIT_FAILED, "cancelled": EXIT_FAILED, "awaiting_review": EXIT_REVIEW}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "needs_database", True):
        return args.handler(args)  # git-only commands: no settings, no database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dagmerge_site.settings")
    if args.command == "run":
        os.environ["DAGMERGE_DISPATCH"] = "threads"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return args.handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dagmerge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    submit = sub.add_parser("submit", help="validate and store a ticket spec (YAML or JSON)")
    submit.add_argument("spec")
    submit.add_argument("--json", action="store_true")
    submit.set_defaults(handler=_submit)

    run = sub.add_parser("run", help="submit a spec and drive it to its end in the foreground")
    run.add_argument("spec")
    run.add_argument("--concurrency", type=_positive_int, default=max(2, os.cpu_count() or 2))
    run.add_argument("--json", action="store_true", help="print the final state as JSON")
    run.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    run.set_defaults(handler=_run)

    status = sub.add_parser("status", help="print a ticket's state")
    status.add_argument("ticket", type=int)
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)

    rollback = sub.add_parser("rollback", help="undo a merge: the ticket branch back to its recovery point")
    rollback.add_argument("attempt", type=int)
    rollback.set_defaults(handler=_rollback)

    revoke = sub.add_parser("revoke-token", help="revoke a ticket's discovered-work token (tasks started "
                            "afterwards get a new one)")
    revoke.add_argument("ticket", type=int)
    revoke.set_defaults(handler=_revoke_token)

    demo = sub.add_parser("demo", help="create a sample repository and ticket, serve the dashboard")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    # Both demo tickets run two tasks side by side, and their merges need a slot too.
    demo.add_argument("--workers", type=_positive_int, default=6)
    demo.set_defaults(handler=_demo)

    for register in merge_commands.COMMANDS:  # git only: no settings, no database
        register(sub)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _load(path: str):
    from coordination.domain.spec import load_spec_file
    from coordination.scheduling.tickets import submit_ticket

    return submit_ticket(load_spec_file(path))


def _print_overlap_warnings(ticket, stream) -> None:
    for event in ticket.events.filter(kind="ticket.overlap_warning"):
        first, second = event.payload["tasks"]
        print(f"warning: {first} and {second} may run in parallel and both claim {event.payload['example']}; "
              "the later waits for the earlier (serialize_overlaps: true orders them in the DAG)", file=stream)


def _submit(args) -> int:
    from coordination.domain.spec import SpecError
    from coordination.web.formats import plural
    from coordination.web.reports import ticket_report

    try:
        ticket = _load(args.spec)
    except SpecError as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _print_overlap_warnings(ticket, sys.stderr)
    if args.json:
        print(json.dumps(ticket_report(ticket), indent=2))
    else:
        print(f"ticket {ticket.pk} submitted: {plural(ticket.tasks.count(), 'task')} on {ticket.branch}")
    return EXIT_DONE


def _run(args) -> int:
    from coordination.domain import dispatch
    from coordination.domain.spec import SpecError
    from coordination.jobs.dispatchers import ThreadDispatcher
    from coordination.jobs.driving import Stuck, drive
    from coordination.web.progress import Narrator, summary
    from coordination.web.reports import ticket_report

    pool = ThreadDispatcher(args.concurrency)
    dispatch.use(pool)
    try:
        ticket = _load(args.spec)
    except SpecError as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = sys.stderr if args.json else sys.stdout
    print(f"ticket {ticket.pk}: {ticket.title} ({ticket.branch})", file=progress)
    _print_overlap_warnings(ticket, progress)
    narrator = Narrator(ticket.pk)

    def show(event) -> None:
        line = narrator.line(event)
        if line:
            print(line, file=progress, flush=True)

    try:
        code = FINAL_FOR_RUN[drive(ticket.pk, pool, on_event=show, timeout=args.timeout)]
    except (Stuck, TimeoutError) as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    pool.shutdown()
    ticket.refresh_from_db()
    if args.json:
        print(json.dumps(ticket_report(ticket), indent=2))
    else:
        print("\n".join(summary(ticket)))
    return code


def _status(args) -> int:
    from coordination.models import Ticket
    from coordination.web.progress import status_lines
    from coordination.web.reports import ticket_report

    try:
        ticket = Ticket.objects.get(pk=args.ticket)
    except Ticket.DoesNotExist:
        print(f"dagmerge: no ticket {args.ticket}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(ticket_report(ticket), indent=2))
        return EXIT_DONE
    print("\n".join(status_lines(ticket)))
    return EXIT_DONE


def _rollback(args) -> int:
    from coordination.scheduling.rollback import rollback_attempt
    from merges.models import MergeAttempt
    from merges.recovery import CannotRollBack

    try:
        attempt = rollback_attempt(args.attempt)
    except MergeAttempt.DoesNotExist:
        print(f"dagmerge: no merge attempt {args.attempt}", file=sys.stderr)
        return EXIT_USAGE
    except CannotRollBack as exc:
        print(f"dagmerge: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"merge #{attempt.pk} rolled back: {attempt.target_ref} at {attempt.base_sha[:12]} again")
    return EXIT_DONE


def _revoke_token(args) -> int:
    from coordination.models import Ticket
    from coordination.scheduling.ticket_access import revoke_ticket_token

    try:
        revoke_ticket_token(args.ticket)
    except Ticket.DoesNotExist:
        print(f"dagmerge: no ticket {args.ticket}", file=sys.stderr)
        return EXIT_USAGE
    print(f"ticket {args.ticket}: token revoked; running tasks can no longer use the API, tasks started "
          "from now on get a new token")
    return EXIT_DONE


def _demo(args) -> int:
    from django.conf import settings

    from coordination.web.demo import ensure_admin, make_demo_tickets

    password = secrets.token_urlsafe(12)
    ensure_admin("admin", password)
    folder = Path(settings.DAGMERGE_HOME) / "demo"
    tickets = make_demo_tickets(folder)
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dagmerge_site.settings"}
    bin_dir = Path(sys.executable).parent
    # The servers write to files: the terminal keeps the address and the password in view.
    with open(logs / "web.log", "ab") as web_log, open(logs / "worker.log", "ab") as worker_log:
        children = [
            subprocess.Popen([str(bin_dir / "daphne"), "-b", args.host, "-p", str(args.port),
                              "dagmerge_site.asgi:application"], env=env, start_new_session=True,
                             stdout=web_log, stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, "-m", "celery", "-A", "dagmerge_site", "worker", "-B", "--loglevel",
                              "INFO", "-Q", "agents,git", "-c", str(args.workers)], env=env,
                             start_new_session=True, stdout=worker_log, stderr=subprocess.STDOUT),
        ]
    signal.signal(signal.SIGTERM, _interrupt)  # a stop from outside still stops the servers it started
    try:
        if _serving(args.host, args.port, children):
            base = f"http://{args.host}:{args.port}"
            print(_framed([
                "dagmerge demo",
                "",
                f"watch      {base}/tickets/{tickets[0].pk}/   (runs through by itself, ~30 s)",
                f"review     {base}/tickets/{tickets[1].pk}/   (waits for you: Reviews, in the navigation)",
                f"log in as admin / {password}",
                "",
                f"logs       {logs / 'web.log'}, {logs / 'worker.log'}",
                "Ctrl-C stops it.",
            ]), flush=True)
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        print(f"dagmerge demo: a server stopped; see {logs}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    stop_servers(children)
    return EXIT_DONE


def _serving(host: str, port: int, children: list[subprocess.Popen], timeout: float = 60.0) -> bool:
    """Wait until the dashboard answers (so the address printed works at once), or a server stopped."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and all(child.poll() is None for child in children):
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _framed(lines: list[str]) -> str:
    width = max(len(line) for line in lines)
    rule = "─" * (width + 2)
    return "\n".join(["", f"┌{rule}┐", *(f"│ {line:<{width}} │" for line in lines), f"└{rule}┘", ""])


def stop_servers(children: list[subprocess.Popen], grace: float = 15.0) -> None:
    """Each server runs in its own process group (workers fork pool processes). SIGTERM goes to each
    leader only: a Celery worker's warm shutdown stops its pool, and hangs until killed when the pool's
    processes get the SIGTERM too. Then SIGKILL to what is left of each group, the leader included."""
    for child in children:
        child.send_signal(signal.SIGTERM)  # nothing when it has been reaped already
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
