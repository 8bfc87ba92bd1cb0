"""The dashboard: tickets, a ticket's DAG and merges, a task's log. Read-only, for any signed-in user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from coordination import dashboard


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    page = dashboard.ticket_list(request.GET.get("page"))
    template = "coordination/partials/ticket_table.html" if request.htmx else "coordination/ticket_list.html"
    return render(request, template, {"page": page})


@login_required
def ticket_detail(request: HttpRequest, ticket_id: int) -> HttpResponse:
    context = dashboard.ticket_page(ticket_id)
    return render(request, "coordination/ticket_detail.html", {**context, "staff": request.user.is_staff})


@login_required
def task_detail(request: HttpRequest, ticket_id: int, key: str) -> HttpResponse:
    context = dashboard.task_page(ticket_id, key)
    return render(request, "coordination/task_detail.html", {**context, "staff": request.user.is_staff})
