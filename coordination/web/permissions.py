"""Who may see the dashboard and who may act on it: two groups made of Django's own model permissions.

- ``viewers`` read everything (tickets, tasks, logs, merges, reviews);
- ``reviewers`` also act: decide hunks, approve, retry or drop a source, retry a task, cancel a ticket.

Superusers pass every check. A signed-in user in neither group sees nothing (403, a page saying which
group would let them), anonymous users go to the login page. The groups are made of the permissions
Django creates for every model, so no migration of ours is needed: ``ensure_groups`` (idempotent) runs
after every ``migrate`` and flush, and the demo and the tests call it too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

VIEWERS = "viewers"
REVIEWERS = "reviewers"

CAN_VIEW = "coordination.view_ticket"
CAN_REVIEW = "merges.change_conflictfile"  # decide hunks, approve, retry with a hint, drop a source
CAN_OPERATE = "coordination.change_task"  # retry a failed task, cancel a ticket

VIEW_PERMISSIONS = ("coordination.view_ticket", "coordination.view_task", "coordination.view_join",
                    "coordination.view_event", "merges.view_mergeattempt", "merges.view_conflictfile",
                    "merges.view_reviewaction", "merges.view_recordedresolution")
ACT_PERMISSIONS = (CAN_REVIEW, CAN_OPERATE, "coordination.change_ticket")
GROUPS = {VIEWERS: VIEW_PERMISSIONS, REVIEWERS: VIEW_PERMISSIONS + ACT_PERMISSIONS}


def ensure_groups(**_signal_kwargs: object) -> None:
    """Create (or complete) the ``viewers`` and ``reviewers`` groups; safe to call any number of times."""
    from django.contrib.auth.management import create_permissions

    wanted = {name for names in GROUPS.values() for name in names}
    found = _permissions(wanted)
    if len(found) < len(wanted):  # before post_migrate made them (a flush, an early call): make them now
        for label in ("coordination", "merges"):
            create_permissions(apps.get_app_config(label), verbosity=0)
        found = _permissions(wanted)
    for name, perms in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*(found[p] for p in perms if p in found))


def _permissions(names: set[str]) -> dict[str, Permission]:
    labels = {n.split(".")[0] for n in names}
    rows = Permission.objects.filter(content_type__app_label__in=labels).select_related("content_type")
    by_name = {f"{p.content_type.app_label}.{p.codename}": p for p in rows}
    return {n: by_name[n] for n in names if n in by_name}


def can_view(user) -> bool:
    return user.is_authenticated and user.has_perm(CAN_VIEW)


def can_review(user) -> bool:
    return user.is_authenticated and user.has_perm(CAN_REVIEW)


def can_operate(user) -> bool:
    return user.is_authenticated and user.has_perm(CAN_OPERATE)


def require(check: Callable[[object], bool], grants: str) -> Callable:
    """A view decorator: anonymous users go to the login page, users who fail ``check`` get 403 with
    ``grants`` (which group would let them) on the page."""
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not check(request.user):
                raise PermissionDenied(grants)
            return view(request, *args, **kwargs)
        return wrapped
    return decorator


viewer_required = require(can_view, f"Reading the dashboard needs the group {VIEWERS} (or {REVIEWERS}).")
reviewer_required = require(can_review, f"Deciding merges needs the group {REVIEWERS}.")
operator_required = require(can_operate, f"Retrying tasks and cancelling tickets needs the group {REVIEWERS}.")
