from __future__ import annotations

from django.urls import path

from coordination.web import api

app_name = "api"

urlpatterns = [
    path("tickets/<int:ticket_id>/tasks", api.ticket_tasks, name="ticket_tasks"),
]
