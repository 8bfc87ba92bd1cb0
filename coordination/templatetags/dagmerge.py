"""Template helpers: who may do what (for showing buttons; the views check again), the inbox count, and
the formats every page shares (one date format, pluralised counts, task rows)."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from coordination.web import formats, merge_pages, permissions, rows

register = template.Library()


@register.filter
def can_view(user) -> bool:
    return permissions.can_view(user)


@register.filter
def can_review(user) -> bool:
    return permissions.can_review(user)


@register.filter
def can_operate(user) -> bool:
    return permissions.can_operate(user)


@register.simple_tag
def reviews_waiting() -> int:
    """Merges waiting for a person, for the navigation: one COUNT query per page."""
    return merge_pages.reviews_waiting()


@register.filter
def when(value) -> SafeString:
    """The one date format: ``{{ ticket.created_at|when }}`` → ``<time datetime="…">2025-01-31 14:05:09</time>``."""
    return mark_safe(formats.when(value))


@register.filter
def plural(count: int, words: str) -> str:
    """``{{ n|plural:"task" }}`` → ``1 task`` / ``2 tasks``; ``{{ n|plural:"child,children" }}``."""
    singular, _, many = words.partition(",")
    return formats.plural(count, singular, many or None)


@register.simple_tag
def task_row(task, oob: bool = False) -> SafeString:
    """A task's row in a task table (``rows.task_row``), from a Task."""
    href = getattr(task, "href", "") or rows.Links.for_ticket(task.ticket_id).task(task.key)
    return mark_safe(rows.task_row(rows.TaskRow.of(task, href), oob=bool(oob)))


@register.filter
def elapsed(start) -> SafeString:
    """A live timer from ``start`` (the browser keeps it counting)."""
    return mark_safe(formats.elapsed(start) if start else "—")
