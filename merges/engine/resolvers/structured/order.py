"""The order of the members both sides inserted at the same place: the one the container already follows.

Only insertions that compete for one place are ordered here; where the sides inserted at different places,
each side's own placement stands. The rules, strongest first:

- **sorted by name**: the neighbouring members of the same family (imports, keys, ...) are sorted by one of
  the profile's keys -- at least three of them (two imports, four changelog entries, six definitions), up to
  six on each side of the place --
  and each side kept them sorted: every insertion goes to its sorted place. Imports are sorted within their
  section (a blank line ends one).
- **grouped by prefix**: the neighbours fall into contiguous groups by category ("Fix:", "Docs:", "lint:")
  and the place is the border between two groups: each insertion joins its own group.
- **newest first**: a changelog list both sides added to at the top: theirs (the later) above ours.
- **finish order**: otherwise ours (the side already merged) then theirs -- where they append to a run of
  like members (or meet another family below), and between two definitions or members. At the head of a run,
  and between two changelog entries or two imports, it declines: replayed on fourteen repositories, the
  author kept ours first there about half the time (changelog entries 30 of 54, imports 15 of 29, at a head
  4 of 12), against 80 % when appending and 70--88 % between definitions.

A caller may leave rules out (``rules``): a rule left out is skipped, and without "finish order" insertions
no other rule orders are declined (None).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from itertools import pairwise
from typing import Any

from merges.engine.resolvers.structured.layout import Member
from merges.engine.resolvers.structured.model import (
    FINISH_ORDER,
    GROUPED,
    NEWEST_FIRST,
    ORDER_RULES,
    SORTED,
    Profile,
)

# Sorted neighbours needed before their order counts as a rule: tools keep imports sorted; people seldom sort
# functions and classes, so a few in alphabetical order by chance must not decide; keys and items in between.
MIN_SORTED = {"import": 2, "definition": 6, "entry": 4}
MIN_SORTED_OTHER = 3
# Only the neighbours this near must be sorted: a long list kept sorted by hand has a stray entry somewhere
# (cobra's projects list: "VMware's [Tanzu...]" among "[Name](...)" entries).
SORTED_WINDOW = 6
GROUPED_BY_BLANK_LINES = frozenset({"import"})
# Families whose insertions between two members follow no order people keep (replay: changelog entries and
# imports inserted by both sides between two members came in finish order about half the time).
UNORDERED_BETWEEN = frozenset({"entry", "import"})


def order_insertions(
    profile: Profile,
    ours: list[Member],
    theirs: list[Member],
    left: list[Member],
    right: list[Member],
    rules: Collection[str] = ORDER_RULES,
) -> tuple[list[Member], str] | None:
    """Both sides' insertions at one place, ordered; ``left`` and ``right`` are the base members around it
    (nearest last and nearest first). None: no rule of ``rules`` orders them."""
    inserted = ours + theirs
    families = {member.family for member in inserted}
    before, after = left, right
    if len(families) == 1:
        family = next(iter(families))
        before, after = _run_before(left, family), _run_after(right, family)
        if family in GROUPED_BY_BLANK_LINES and right and _starts_group(right[0]) and _start_a_group(ours, theirs):
            before, after = [], _run_after(right, family, joined=True)  # both opened the section below
        ordered = _sorted(ours, theirs, before, after, family) if SORTED in rules else None
        if ordered is not None:
            return ordered, SORTED
        ordered = _grouped(ours, theirs, before, after) if GROUPED in rules else None
        if ordered is not None:
            return ordered, GROUPED
    if NEWEST_FIRST in rules and profile.newest_first and not left and right:
        return theirs + ours, NEWEST_FIRST
    if FINISH_ORDER not in rules or after and (not before or families & UNORDERED_BETWEEN):
        return None  # at the head of a run of like members, or between two entries or imports: no evident order
    return inserted, FINISH_ORDER


def _run_before(left: list[Member], family: str) -> list[Member]:
    """The members just before the place, back to the first of another family -- or, for imports, to the
    first of their group: blank lines part sections (standard library, third party, the project's own), each
    sorted on its own."""
    run: list[Member] = []
    for member in reversed(left):
        if member.family != family:
            break
        run.append(member)
        if family in GROUPED_BY_BLANK_LINES and _starts_group(member):
            break
    return run[::-1]


def _run_after(right: list[Member], family: str, joined: bool = False) -> list[Member]:
    """The members just after the place, up to the first of another family (or, for imports, of another
    group: at the border of two sections only the one above counts -- unless the insertions ``joined`` the
    one below)."""
    run: list[Member] = []
    for i, member in enumerate(right):
        if member.family != family or family in GROUPED_BY_BLANK_LINES and _starts_group(member) and (i or not joined):
            break
        run.append(member)
    return run


def _starts_group(member: Member) -> bool:
    return member.gap.count(b"\n") >= 2


def _start_a_group(ours: list[Member], theirs: list[Member]) -> bool:
    """Both sides put a blank line above what they inserted at a section border: it opens the section below."""
    return _starts_group(ours[0]) and _starts_group(theirs[0])


def _sorted(
    ours: list[Member], theirs: list[Member], before: list[Member], after: list[Member], family: str
) -> list[Member] | None:
    before, after = before[-SORTED_WINDOW:], after[:SORTED_WINDOW]
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
