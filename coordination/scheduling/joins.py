"""Joins: a task with two or more parents, registered whoever created the task (spec, API, admin)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from coordination.models import Event, Join, Task


def ensure_join(task: Task) -> Join | None:
    """Register (or update) the join of ``task`` when it has several parents."""
    parents = list(task.depends_on.all())
    if len(parents) < 2:
        return None
    with transaction.atomic():
        join, created = Join.objects.get_or_create(continuation=task, defaults={"ticket_id": task.ticket_id})
        join.sources.set(parents)
        Event.record(task.ticket, "join.registered" if created else "join.updated",
                     {"join_id": join.pk, "continuation": task.key, "sources": sorted(p.key for p in parents)})
    return join


@receiver(m2m_changed, sender=Task.depends_on.through)
def _register_join_on_new_parents(sender, instance, action, reverse, **kwargs) -> None:
    if action not in ("post_add", "post_remove") :
        return
    if reverse:  # parents were added from the parent's side: every changed child may be a join now
        for child in Task.objects.filter(pk__in=kwargs["pk_set"] or ()):
            ensure_join(child)
    else:
        ensure_join(instance)
