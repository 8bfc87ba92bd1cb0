from __future__ import annotations

from django.urls import path

from coordination.review.live import ReviewConsumer
from coordination.web.consumers import DashboardConsumer, TicketConsumer

websocket_urlpatterns = [
    path("ws/tickets/<int:ticket_id>/", TicketConsumer.as_asgi()),
    path("ws/tickets/<int:ticket_id>/reviews/<int:attempt_id>/", ReviewConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
