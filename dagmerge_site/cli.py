"""The ``dagmerge`` command: a door onto the domain functions, for people and for scripts."""

from __future__ import annotations

import argparse
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
    demo.add_argument("--workers", type=_positive_int, default=2)
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
        print(f"ticket {ticket.pk} submitted: {ticket.tasks.count()} tasks on {ticket.branch}")
    return EXIT_DONE


def _run(args) -> int:
    from coordination.domain import dispatch
    from coordination.domain.spec import SpecError
    from coordination.jobs.dispatchers import ThreadDispatcher
    from coordination.jobs.driving import Stuck, drive
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

    def show(event) -> None:
        line = _progress_line(event)
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
        print(f"ticket {ticket.pk} {ticket.status}: {ticket.branch} at {ticket.head_sha[:12]}"
              + (f" — {ticket.error}" if ticket.error else ""))
    return code


def _progress_line(event) -> str | None:
    payload = event.payload
    stamp = event.created_at.strftime("%H:%M:%S")
    if event.kind.startswith("task.") and "to" in payload:
        return f"{stamp} task {payload['task']}: {payload['to']}"
    if event.kind.startswith("merge.") and event.kind != "merge.started":
        order = " → ".join(payload.get("order") or [])
        return f"{stamp} {event.kind} {order} {payload.get('error') or ''}".rstrip()
    if event.kind.startswith(("ticket.", "join.")) and "to" in payload:
        return f"{stamp} {event.kind.split('.')[0]} {payload.get('continuation', '')}: {payload['to']}".replace(
            "  ", " ")
    return None


def _status(args) -> int:
    from coordination.models import Ticket
    from coordination.web.reports import ticket_report

    try:
        ticket = Ticket.objects.get(pk=args.ticket)
    except Ticket.DoesNotExist:
        print(f"dagmerge: no ticket {args.ticket}", file=sys.stderr)
        return EXIT_USAGE
    report = ticket_report(ticket)
    if args.json:
        print(json.dumps(report, indent=2))
        return EXIT_DONE
    print(f"ticket {report['ticket']}: {report['title']} — {report['status']} ({report['branch']} at "
          f"{report['head'][:12]})")
    for task in report["tasks"]:
        print(f"  {task['key']:<12} {task['status']:<10} {(task['head'] or '')[:12]}  {task['error']}")
    for join in report["joins"]:
        print(f"  join → {join['continuation']} from {', '.join(join['sources'])}: {join['status']}"
              f" order {' → '.join(join['merge_order']) or '-'}")
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
    tickets = make_demo_tickets(Path(settings.DAGMERGE_HOME) / "demo")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dagmerge_site.settings"}
    bin_dir = Path(sys.executable).parent
    children = [
        subprocess.Popen([str(bin_dir / "daphne"), "-b", args.host, "-p", str(args.port),
                          "dagmerge_site.asgi:application"], env=env, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "dagmerge_site", "worker", "-B", "--loglevel",
                          "INFO", "-Q", "agents,git", "-c", str(args.workers)], env=env, start_new_session=True),
    ]
    base = f"http://{args.host}:{args.port}"
    print(f"\ndagmerge demo: {base}/tickets/{tickets[0].pk}/  (runs through by itself)\n"
          f"  a conflict to review: {base}/tickets/{tickets[1].pk}/ (then Reviews, in the navigation)\n"
          f"  log in as admin / {password}\n  Ctrl-C stops it.\n", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a stop from outside still stops the servers it started
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    _stop_groups(children)
    return EXIT_DONE


def _stop_groups(children: list[subprocess.Popen]) -> None:
    """Each server runs in its own process group (workers fork pool processes): stop the whole group,
    politely first."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        for child in children:
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        if all(_group_gone(child.pid) for child in children):
            return


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
