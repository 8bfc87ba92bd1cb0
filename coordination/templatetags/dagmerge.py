"""Template helpers: who may do what (for showing buttons; the views check again), the inbox count."""

from __future__ import annotations

from django import template

from coordination.web import merge_pages, permissions

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
