"""Every door of the dashboard × every kind of visitor: anonymous, signed in but in no group (charlie), a
viewer (bob), a reviewer (alice) — × GET and POST, POST with and without the CSRF token, known and unknown ids.

What each answer must be is derived from one table (``DOORS``): who may pass (read / act), which methods the
door takes, and for the known ids which answers an action may give (done, refused by its own rules). A new
URL in coordination/urls.py fails ``test_every_url_is_in_the_matrix`` until it is added here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

from coordination import urls as coordination_urls
from tests import factories
from tests.security.world import World, build_world

pytestmark = pytest.mark.django_db

UNKNOWN = 987654


@dataclass(frozen=True)
class Door:
    name: str
    right: str  # "view" (viewers and reviewers) or "act" (reviewers only)
    methods: tuple[str, ...]  # what the door answers (a view door answers any method like GET)
    args: str  # which ids, e.g. "ticket key" (see ``arguments``)
    data: tuple[tuple[str, str], ...] = ()


DOORS = [
    Door("ticket_list", "view", ("GET", "POST"), ""),
    Door("ticket_detail", "view", ("GET", "POST"), "ticket"),
    Door("live_poll", "view", ("GET", "POST"), "ticket"),
    Door("task_detail", "view", ("GET", "POST"), "ticket key"),
    Door("merge_attempt", "view", ("GET", "POST"), "attempt"),
    Door("reviews", "view", ("GET", "POST"), ""),
    Door("review", "view", ("GET", "POST"), "attempt"),
    Door("review_live", "view", ("GET", "POST"), "attempt"),
    Door("review_file", "view", ("GET", "POST"), "attempt file"),
    Door("retry_task", "act", ("GET", "POST"), "ticket key"),
    Door("cancel_ticket", "act", ("GET", "POST"), "ticket"),
    Door("rollback_merge", "act", ("GET", "POST"), "attempt"),
    Door("resume_ticket", "act", ("POST",), "ticket"),
    Door("decide_hunk", "act", ("POST",), "attempt file hunk", (("choice", "theirs"),)),
    Door("undo_hunk", "act", ("POST",), "attempt file hunk"),
    Door("decide_file", "act", ("POST",), "attempt file", (("choice", "ours"),)),
    Door("approve", "act", ("POST",), "attempt"),
    Door("retry_with_hint", "act", ("POST",), "attempt", (("hint", "keep both"),)),
    Door("drop_source", "act", ("POST",), "attempt", (("source", "C"),)),
    Door("live_dashboard", "view", ("GET", "POST"), ""),
    Door("rerun_failed", "act", ("GET", "POST"), "ticket"),
]
# /metrics answers scrapers, not browsers: off (404) unless DAGMERGE_METRICS, 401 without a login or its
# token, 403 for a user who may not view — its own matrix is tests/coordination/test_metrics.py.
OWN_MATRIX = {"metrics"}
USERS = ["anonymous", "charlie", "bob", "alice"]
ACTED = {200, 302, 409, 422}  # done, or refused by the action's own rules (a gate, a state), never by the door


def arguments(door: Door, world: World | None) -> list[object]:
    known = world is not None
    ids = {"ticket": world.ticket.pk if known else UNKNOWN, "key": world.task.key if known else "nope",
           "attempt": world.attempt.pk if known else UNKNOWN, "file": world.text_file.pk if known else UNKNOWN,
           "hunk": 1}
    return [ids[part] for part in door.args.split()]


def client_of(who: str, csrf: bool) -> tuple[Client, dict[str, str]]:
    """A browser that enforces CSRF like a real one; with ``csrf`` it holds the cookie and sends the header."""
    client = Client(enforce_csrf_checks=True)
    users = {"charlie": factories.charlie, "bob": factories.bob, "alice": factories.alice}
    if who in users:
        client.force_login(users[who]())
    if not csrf:
        return client, {}
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    return client, {"X-CSRFToken": token}


def expected(door: Door, who: str, method: str, csrf: bool, known: bool) -> set[int]:
    if method == "POST" and not csrf:
        return {403}  # the CSRF check comes before everything else
    if who == "anonymous":
        return {302}  # to the login page
    may = who == "alice" or (who == "bob" and door.right == "view")
    if not may:
        return {403}  # rights before lookups: an outsider learns nothing of which ids exist
    if method not in door.methods:
        return {405}
    if not known and door.args:
        return {404}
    return {200} if door.right == "view" or method == "GET" else ACTED


@pytest.mark.parametrize("who", USERS)
@pytest.mark.parametrize("door", DOORS, ids=[d.name for d in DOORS])
def test_each_door_answers_each_visitor_as_the_table_says(door, who):
    world = build_world()
    answers, wanted = {}, {}
    # Unknown ids first and the acting POST last: an action changes what the next request would find.
    for known in (False, True):
        for method, csrf in (("GET", False), ("POST", False), ("POST", True)):
            client, headers = client_of(who, csrf)
            url = reverse(f"coordination:{door.name}", args=arguments(door, world if known else None))
            send = client.get if method == "GET" else client.post
            response = send(url, dict(door.data), headers=headers)
            case = f"{method}{' +csrf' if csrf else ''} {'known' if known else 'unknown'}"
            answers[case], wanted[case] = response.status_code, expected(door, who, method, csrf, known)
            if response.status_code == 302 and who == "anonymous":
                assert response["Location"].startswith(reverse("login") + "?next=")
    assert {c: a for c, a in answers.items() if a not in wanted[c]} == {}, (answers, wanted)


def test_every_url_is_in_the_matrix():
    names = {p.name for p in coordination_urls.urlpatterns if isinstance(p, URLPattern)}
    assert names == {door.name for door in DOORS} | OWN_MATRIX


ADMIN_PAGES = ["admin:index", "admin:coordination_ticket_changelist", "admin:coordination_task_changelist",
               "admin:coordination_event_changelist", "admin:merges_mergeattempt_changelist",
               "admin:merges_reviewaction_changelist"]


@pytest.mark.parametrize("who", USERS)
def test_the_admin_lets_in_staff_only_and_every_post_needs_csrf(who):
    """Who reaches the admin at all; what staff may change there is tests/coordination/test_admin.py's."""
    world = build_world()
    pages = [reverse(name) for name in ADMIN_PAGES]
    pages += [reverse("admin:coordination_ticket_change", args=[world.ticket.pk]),
              reverse("admin:coordination_ticket_change", args=[UNKNOWN]), reverse("admin:auth_user_changelist")]
    for url in pages:
        client, headers = client_of(who, csrf=False)
        got = client.get(url)
        if who == "alice":  # staff in the reviewers group: the audit, not the accounts; unknown ids go home
            wanted = 403 if "auth/user" in url else 302 if str(UNKNOWN) in url else 200
            assert got.status_code == wanted, (url, got.status_code)
        else:
            assert got.status_code == 302 and got["Location"].startswith(reverse("admin:login")), url
        assert client.post(url, {}).status_code == 403  # no CSRF token
    if who != "alice":
        client, headers = client_of(who, csrf=True)
        assert client.post(pages[1], {"action": "delete_selected", "_selected_action": [world.ticket.pk]},
                           headers=headers).status_code == 302
        assert world.ticket.__class__.objects.filter(pk=world.ticket.pk).exists()


@pytest.mark.parametrize("who", USERS)
def test_a_session_opens_no_door_of_the_task_api(who):
    """The API answers the ticket's token only: a signed-in reviewer's session is not a token. The token
    cases (none, wrong, another ticket's, expired, revoked, bad bodies) are tests/coordination/test_api.py's."""
    world = build_world()
    for ticket_id in (world.ticket.pk, UNKNOWN):
        url = reverse("api:ticket_tasks", args=[ticket_id])
        for csrf in (False, True):
            client, headers = client_of(who, csrf)
            assert client.get(url, headers=headers).status_code == 401
            assert client.post(url, b'{"key": "Z", "command": "true"}', content_type="application/json",
                               headers=headers).status_code == 401
    assert not world.ticket.tasks.filter(key="Z").exists()


def test_the_login_page_is_open_and_logging_out_needs_a_post_with_csrf():
    client, headers = client_of("bob", csrf=True)
    assert Client().get(reverse("login")).status_code == 200
    assert Client().get(reverse("password_change")).status_code == 302  # signed in only
    assert client.get(reverse("password_change")).status_code == 200
    assert Client().get("/accounts/password_reset/").status_code == 404  # no mail is sent, so no reset by mail
    assert client.get(reverse("logout")).status_code == 405
    bare, _ = client_of("bob", csrf=False)
    assert bare.post(reverse("logout")).status_code == 403
    assert client.post(reverse("logout"), headers=headers).status_code == 302
    assert client.get(reverse("coordination:ticket_list")).status_code == 302  # signed out


def test_every_route_of_the_site_is_covered():
    """The site's URL tree: the dashboard's doors above, the admin, Django's auth views and the task API."""
    top = {str(p.pattern) for p in get_resolver().url_patterns}
    assert top == {"admin/", "accounts/", "api/", ""}
