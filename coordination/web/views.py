"""The dashboard's pages and operations. Viewers read; reviewers also act (see ``permissions``).

Each view parses the request, checks permission, calls one domain function and renders. Every htmx
request has a plain twin: links keep their ``href``, forms their ``action``, and a POST without htmx
answers with a redirect to the page it changed.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from coordination.models import Task, Ticket
from coordination.scheduling import operations, rerun, rollback
from coordination.web import dashboard, merge_pages
from coordination.web.formats import plural
from coordination.web.htmx import HtmxHttpRequest
from coordination.web.liveview import DashboardView, LiveView
from coordination.web.permissions import can_operate, can_review, operator_required, reviewer_required, viewer_required
from merges.models import MergeAttempt
from merges.recovery import CannotRollBack


@viewer_required
def ticket_list(request: HtmxHttpRequest) -> HttpResponse:
    page = dashboard.ticket_list(request.GET.get("page"))
    if request.htmx:
        return render(request, "coordination/partials/ticket_table.html", {"page": page})
    chart = merge_pages.tickets_chart(list(page.object_list))
    return render(request, "coordination/ticket_list.html", {"page": page, "chart": chart})


@viewer_required
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    context = dashboard.ticket_page(ticket_id, staff=request.user.is_staff)
    return render(request, "coordination/ticket_detail.html", {**context, **_rights(request)})


@viewer_required
def task_detail(request: HttpRequest, ticket_id: int, key: str) -> HttpResponse:
    context = dashboard.task_page(ticket_id, key)
    return render(request, "coordination/task_detail.html", {**context, **_rights(request)})


@viewer_required
def live_poll(request: HttpRequest, ticket_id: int) -> HttpResponse:
    """The live view without a websocket: the page polls this while its socket is down. Answers what
    the socket would have sent (out-of-band fragments and the sequence number) for events after ``since``."""
    since, task = _int(request.GET.get("since")), _int(request.GET.get("task"))
    get_object_or_404(Task, pk=task, ticket_id=ticket_id) if task else get_object_or_404(Ticket, pk=ticket_id)
    view = LiveView(ticket_id, staff=request.user.is_staff, task_id=task, can_operate=can_operate(request.user))
    return HttpResponse(view.poll(since))


@viewer_required
def live_dashboard(request: HttpRequest) -> HttpResponse:
    """The ticket list's, the inbox's or the navigation's live fragments, for a page whose socket is down."""
    name = request.GET.get("view", "nav")
    view = DashboardView(name if name in ("tickets", "reviews") else "nav", request.GET.get("page"))
    return HttpResponse(view.snapshot())


@viewer_required
def reviews(request: HttpRequest) -> HttpResponse:
    return render(request, "coordination/reviews.html", {"rows": merge_pages.inbox()})


@viewer_required
def merge_attempt(request: HttpRequest, attempt_id: int) -> HttpResponse:
    context = merge_pages.attempt_page(attempt_id)
    return render(request, "coordination/merge_attempt.html", {**context, **_rights(request)})


@operator_required
@require_http_methods(["GET", "POST"])
def retry_task(request: HtmxHttpRequest, ticket_id: int, key: str) -> HttpResponse:
    """GET: what a retry would put back to work (and what it cannot); POST: do it."""
    task = get_object_or_404(Task, ticket_id=ticket_id, key=key)
    if request.method == "GET":
        return _confirm(request, "retry", operations.preview_retry(task.pk), status=200)
    try:
        operations.retry_task(task.pk, request.user)
    except operations.OperationRefused:
        return _confirm(request, "retry", operations.preview_retry(task.pk), status=409)
    messages.success(request, f"Task {key} goes back to work.")
    return _back(request, reverse("coordination:task_detail", args=[ticket_id, key]))


@operator_required
@require_http_methods(["GET", "POST"])
def cancel_ticket(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    """GET: what cancelling stops; POST: cancel."""
    get_object_or_404(Ticket, pk=ticket_id)
    if request.method == "GET":
        return _confirm(request, "cancel", operations.preview_cancel(ticket_id), status=200)
    try:
        operations.cancel_ticket(ticket_id, request.user)
    except operations.OperationRefused as exc:
        preview = operations.preview_cancel(ticket_id)
        preview.problems = preview.problems or exc.problems
        return _confirm(request, "cancel", preview, status=409)
    messages.success(request, f"Ticket #{ticket_id} is cancelled.")
    return _back(request, reverse("coordination:ticket_detail", args=[ticket_id]))


@reviewer_required
@require_http_methods(["GET", "POST"])
def rollback_merge(request: HtmxHttpRequest, attempt_id: int) -> HttpResponse:
    """GET: what rolling the merge back undoes; POST: roll it back (the ticket waits to be resumed or closed)."""
    attempt = get_object_or_404(MergeAttempt, pk=attempt_id)
    if request.method == "GET":
        return _confirm(request, "rollback", rollback.preview_rollback(attempt.pk), status=200)
    try:
        rollback.rollback_attempt(attempt.pk, request.user)
    except CannotRollBack as exc:
        preview = rollback.preview_rollback(attempt.pk)
        preview.problems = preview.problems or [str(exc)]
        return _confirm(request, "rollback", preview, status=409)
    messages.success(request, f"Merge #{attempt.pk} is rolled back; ticket #{attempt.ticket_id} waits to be resumed "
                              "or cancelled.")
    return _back(request, reverse("coordination:ticket_detail", args=[attempt.ticket_id]))


@operator_required
@require_POST
def resume_ticket(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    """A rolled-back ticket goes back to work: its rolled-back tasks run again from the restored head."""
    get_object_or_404(Ticket, pk=ticket_id)
    try:
        rollback.resume_ticket(ticket_id, request.user)
    except CannotRollBack as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Ticket #{ticket_id} is back at work.")
    return _back(request, reverse("coordination:ticket_detail", args=[ticket_id]))


@operator_required
@require_http_methods(["GET", "POST"])
def rerun_failed(request: HtmxHttpRequest, ticket_id: int) -> HttpResponse:
    """GET: which failed tasks run again and what goes back to work with them; POST: re-run them."""
    get_object_or_404(Ticket, pk=ticket_id)
    if request.method == "GET":
        return _confirm(request, "rerun", rerun.preview_rerun(ticket_id), status=200)
    try:
        keys = rerun.rerun_failed_tasks(ticket_id, request.user)
    except operations.OperationRefused as exc:
        preview = rerun.preview_rerun(ticket_id)
        preview.problems = preview.problems or exc.problems
        return _confirm(request, "rerun", preview, status=409)
    messages.success(request, f"Re-running {plural(len(keys), 'failed task')}: {', '.join(keys)}.")
    return _back(request, reverse("coordination:ticket_detail", args=[ticket_id]))


def _confirm(request: HtmxHttpRequest, operation: str, preview, status: int) -> HttpResponse:
    """The preview of an operation: inline under its button (htmx), or as a page of its own."""
    template = f"coordination/partials/{operation}_preview.html" if request.htmx else "coordination/confirm.html"
    return render(request, template, {"operation": operation, "preview": preview,
                                      "partial": f"coordination/partials/{operation}_preview.html"}, status=status)


def _back(request: HtmxHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


def _rights(request: HttpRequest) -> dict[str, bool]:
    return {"staff": request.user.is_staff, "can_operate": can_operate(request.user),
            "can_review": can_review(request.user)}


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
