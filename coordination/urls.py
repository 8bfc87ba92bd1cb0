from __future__ import annotations

from django.urls import path

from coordination import views

app_name = "coordination"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("tickets/<int:ticket_id>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:ticket_id>/tasks/<str:key>/", views.task_detail, name="task_detail"),
]
