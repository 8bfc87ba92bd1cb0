"""The order of the members both sides inserted at the same place: the one the container already follows.

Only insertions that compete for one place are ordered here; where the sides inserted at different places,
each side's own placement stands. The rules, strongest first:

- **sorted by name**: the neighbouring members of the same family (imports, keys, ...) are sorted by one of
  the profile's keys -- at least three of them (two imports, four changelog entries, six definitions) --
  and each side kept them sorted: every insertion goes to its sorted place.
- **grouped by prefix**: the neighbours fall into contiguous groups by category ("Fix:", "Docs:", "lint:")
  and the place is the border between two groups: each insertion joins its own group.
- **newest first**: a changelog list both sides added to at the top: theirs (the later) above ours.
- **finish order**: otherwise ours (the side already merged) then theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import pairwise
from typing import Any

from merges.engine.resolvers.structured.layout import Member
from merges.engine.resolvers.structured.model import FINISH_ORDER, GROUPED, NEWEST_FIRST, SORTED, Profile

# Sorted neighbours needed before their order counts as a rule: tools keep imports sorted; people seldom sort
# functions and classes, so a few in alphabetical order by chance must not decide; keys and items in between.
MIN_SORTED = {"import": 2, "definition": 6, "entry": 4}
MIN_SORTED_OTHER = 3


def order_insertions(
    profile: Profile, ours: list[Member], theirs: list[Member], left: list[Member], right: list[Member]
) -> tuple[list[Member], str]:
    """Both sides' insertions at one place, ordered; ``left`` and ``right`` are the base members around it
    (nearest last and nearest first)."""
    inserted = ours + theirs
    families = {member.family for member in inserted}
    if len(families) == 1:
        family = families.pop()
        before = _run(reversed(left), family)[::-1]
        after = _run(right, family)
        ordered = _sorted(ours, theirs, before, after, family)
        if ordered is not None:
            return ordered, SORTED
        ordered = _grouped(ours, theirs, before, after)
        if ordered is not None:
            return ordered, GROUPED
    if profile.newest_first and not left and right:
        return theirs + ours, NEWEST_FIRST
    return inserted, FINISH_ORDER


def _run(members: Iterable[Member], family: str) -> list[Member]:
    """The members up to the first of another family."""
    run = []
    for member in members:
        if member.family != family:
            break
        run.append(member)
    return run


def _sorted(
    ours: list[Member], theirs: list[Member], before: list[Member], after: list[Member], family: str
) -> list[Member] | None:
    if len(before) + len(after) < MIN_SORTED.get(family, MIN_SORTED_OTHER):
        return None
    for k in range(min(len(member.keys) for member in [*ours, *theirs, *before, *after])):

        def key(member: Member, k: int = k) -> Any:
            return member.keys[k]

        sides = [before + ours + after, before + theirs + after, before + after]
        if all(_ascending(members, key) for members in sides):
            merged = sorted(ours + theirs, key=key)
            if _ascending(before + merged + after, key):
                return merged
    return None


def _ascending(members: list[Member], key: Callable[[Member], Any]) -> bool:
    try:
        return all(key(a) < key(b) for a, b in pairwise(members))
    except TypeError:  # keys of different shapes cannot be compared: no evident order
        return False


def _grouped(
    ours: list[Member], theirs: list[Member], before: list[Member], after: list[Member]
) -> list[Member] | None:
    context = before + after
    if not before or not after or any(member.category is None for member in [*context, *ours, *theirs]):
        return None
    previous, following = before[-1].category, after[0].category
    categories = [member.category for member in context]
    runs = [c for i, c in enumerate(categories) if i == 0 or categories[i - 1] != c]
    if previous == following or len(runs) != len(set(runs)) or len(runs) == len(context):
        return None  # no border here, a group split in two, or no group of two: no evident grouping
    for side in (ours, theirs):
        categories = [member.category for member in side]
        if set(categories) - {previous, following} or categories != sorted(categories, key=lambda c: c != previous):
            return None  # a side put an entry into a foreign group: the file does not follow groups here
    inserted = ours + theirs
    return [m for m in inserted if m.category == previous] + [m for m in inserted if m.category == following]
