from __future__ import annotations

from django.urls import path

from coordination.web.consumers import TicketConsumer

websocket_urlpatterns = [
    path("ws/tickets/<int:ticket_id>/", TicketConsumer.as_asgi()),
]
