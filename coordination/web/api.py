"""JSON API for tasks at work: list the ticket's tasks, add discovered tasks.

Authenticated by the per-ticket token a task gets as ``DAGMERGE_TOKEN`` (Authorization: Bearer …); a
token opens its own ticket and no other, expires when the ticket ends and can be revoked
(``coordination.scheduling.ticket_access``). Bodies are small JSON objects: larger ones are refused before
they are parsed.
"""

from __future__ import annotations

import json
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from coordination.domain.spec import SpecError
from coordination.models import Ticket
from coordination.scheduling.ticket_access import TokenRefused, check_ticket_token
from coordination.scheduling.tickets import TicketClosed, add_discovered_task
from coordination.web.reports import ticket_report

MAX_BODY_BYTES = 256 * 1024  # a task spec is a few hundred bytes; this leaves room for long instructions


class BadBody(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def ticket_token_required(view):
    @wraps(view)
    def check(request: HttpRequest, ticket_id: int):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "send the ticket's token as 'Authorization: Bearer <DAGMERGE_TOKEN>'")
        try:
            check_ticket_token(ticket_id, token.strip())
        except TokenRefused as exc:
            return _error(403, str(exc))
        return view(request, ticket_id)

    return csrf_exempt(check)


def _json_body(request: HttpRequest) -> object:
    """The request's JSON, or BadBody: 413 past MAX_BODY_BYTES (by the declared length, before reading,
    and by the bytes read), 400 for anything json cannot parse (bad UTF-8, nesting too deep included)."""
    too_big = BadBody(413, f"body larger than {MAX_BODY_BYTES} bytes")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_big
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_big from None
    if len(body) > MAX_BODY_BYTES:
        raise too_big
    try:
        return json.loads(body or b"null")
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadBody(400, f"body is not JSON: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None


@ticket_token_required
@require_http_methods(["GET", "POST"])
def ticket_tasks(request: HttpRequest, ticket_id: int) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(ticket_report(Ticket.objects.get(pk=ticket_id)))
    try:
        raw = _json_body(request)
        task = add_discovered_task(ticket_id, raw)
    except BadBody as exc:
        return _error(exc.status, str(exc))
    except SpecError as exc:
        return _error(400, str(exc))
    except TicketClosed as exc:
        return _error(409, str(exc))
    return JsonResponse({"key": task.key, "status": task.status, "join": hasattr(task, "join")}, status=201)
