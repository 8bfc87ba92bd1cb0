"""The live view's websockets through the real ASGI stack (origin check, session, auth, routing, consumer):
every socket path × every kind of visitor × the page's own Origin, a foreign one and none.

A socket opens only for a viewer or a reviewer, from the site's own origin, on a page that exists: a task or
a merge of *another* ticket named on this ticket's socket is refused like an unknown one (viewers see every
ticket — there is no per-ticket visibility to test beyond that, see docs/security.md).
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from coordination.routing import websocket_urlpatterns
from tests import factories
from tests.coordination.test_live import in_process_layer, live, socket  # noqa: F401 (a fixture)
from tests.security.world import build_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("in_process_layer")]

ORIGINS = {"own": [(b"origin", b"http://localhost")], "foreign": [(b"origin", b"http://evil.example")],
           "none": []}


def session_cookie(who: str) -> list[tuple[bytes, bytes]]:
    users = {"charlie": factories.charlie, "bob": factories.bob, "alice": factories.alice}
    if who not in users:
        return []
    client = Client()
    client.force_login(users[who]())
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode())]


def socket_paths() -> dict[str, tuple[str, bool]]:
    """Each path, and whether the page it names exists."""
    world, other = build_world(), build_world()
    ticket, task = world.ticket.pk, world.task.pk
    return {
        "ticket": (f"/ws/tickets/{ticket}/", True),
        "its task": (f"/ws/tickets/{ticket}/?task={task}", True),
        "its review": (f"/ws/tickets/{ticket}/reviews/{world.attempt.pk}/", True),
        "another ticket's task": (f"/ws/tickets/{ticket}/?task={other.task.pk}", False),
        "another ticket's review": (f"/ws/tickets/{ticket}/reviews/{other.attempt.pk}/", False),
        "unknown ticket": ("/ws/tickets/987654/", False),
        "the ticket list": ("/ws/dashboard/?view=tickets", True),
        "the inbox": ("/ws/dashboard/?view=reviews", True),
    }


@pytest.mark.parametrize("who", ["anonymous", "charlie", "bob", "alice"])
@live
async def test_a_socket_opens_for_viewers_from_the_sites_origin_on_pages_that_exist(who):
    paths = await sync_to_async(socket_paths)()
    cookie = await sync_to_async(session_cookie)(who)
    opened, wanted = {}, {}
    for name, (path, exists) in paths.items():
        for origin, headers in ORIGINS.items():
            communicator = socket(path, headers + cookie)
            connected, _ = await communicator.connect()
            if connected:
                assert "hx-swap-oob" in await communicator.receive_from(timeout=10)  # the snapshot came
            await communicator.disconnect()
            opened[name, origin] = connected
            wanted[name, origin] = who in ("bob", "alice") and origin == "own" and exists
    assert opened == wanted


def test_every_socket_route_is_in_the_matrix():
    assert [str(route.pattern) for route in websocket_urlpatterns] == [
        "ws/tickets/<int:ticket_id>/", "ws/tickets/<int:ticket_id>/reviews/<int:attempt_id>/", "ws/dashboard/"]
