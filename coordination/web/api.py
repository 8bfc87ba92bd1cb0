"""JSON API for tasks at work: list the ticket's tasks, add discovered tasks.

Authenticated by the per-ticket token a task gets as ``DAGMERGE_TOKEN`` (Authorization: Bearer …); a
token opens its own ticket and no other.
"""

from __future__ import annotations

import json
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from coordination.domain.spec import SpecError
from coordination.domain.tokens import token_grants
from coordination.models import Ticket
from coordination.scheduling.tickets import TicketClosed, add_discovered_task
from coordination.web.reports import ticket_report


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def ticket_token_required(view):
    @wraps(view)
    def check(request: HttpRequest, ticket_id: int):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "send the ticket's token as 'Authorization: Bearer <DAGMERGE_TOKEN>'")
        if not token_grants(ticket_id, token.strip()):
            return _error(403, f"this token does not open ticket {ticket_id}")
        if not Ticket.objects.filter(pk=ticket_id).exists():
            return _error(404, f"no ticket {ticket_id}")
        return view(request, ticket_id)

    return csrf_exempt(check)


@ticket_token_required
@require_http_methods(["GET", "POST"])
def ticket_tasks(request: HttpRequest, ticket_id: int) -> JsonResponse:
    if request.method == "GET":
        return JsonResponse(ticket_report(Ticket.objects.get(pk=ticket_id)))
    try:
        raw = json.loads(request.body or b"null")
    except json.JSONDecodeError as exc:
        return _error(400, f"body is not JSON: {exc}")
    try:
        task = add_discovered_task(ticket_id, raw)
    except SpecError as exc:
        return _error(400, str(exc))
    except TicketClosed as exc:
        return _error(409, str(exc))
    return JsonResponse({"key": task.key, "status": task.status, "join": hasattr(task, "join")}, status=201)
