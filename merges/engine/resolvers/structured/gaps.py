"""The whitespace between two merged members: taken from the versions, so the merge reads as people wrote it."""

from __future__ import annotations

import re
from collections import Counter

from merges.engine.resolvers.structured.layout import Layout, Member
from merges.engine.resolvers.structured.order import GROUPED_BY_BLANK_LINES

_LINE_END = re.compile(rb"[ \t]*(?=\r?\n)")


def gap_before(member: Member, previous: Member, layouts: list[Layout], both_new: bool = False) -> bytes:
    """The whitespace before a member, after ``previous``: as some version had it after the same neighbour (a
    side's change of layout winning over the base); else as it stood elsewhere -- but two new imports the sides
    put at one place get their section's usual gap, not the blank line that opened a section where one stood
    (unless they belong to sections of their own: ``from __future__`` above the others) -- else the usual gap
    between such members. Spaces that ended ``previous``'s last line stay with it."""
    return _keep_line_end(previous, _chosen(member, previous, layouts, both_new))


def _chosen(member: Member, previous: Member, layouts: list[Layout], both_new: bool) -> bytes:
    lb, lo, lt = layouts
    found: dict[str, bytes] = {}
    for name, layout in (("ours", lo), ("theirs", lt), ("base", lb)):
        i = layout.index.get(member.sig)
        if i and layout.members[i - 1].sig == previous.sig:
            found[name] = layout.members[i].gap
    for name in ("ours", "theirs"):
        if name in found and found[name] != found.get("base"):
            return found[name]
    if found:
        return found.get("base", next(iter(found.values())))
    usual = _usual_gap(member, previous, layouts)
    gap = _moved_boundary(member, lb, lo, lt)
    for layout in (lo, lt, lb):
        i = layout.index.get(member.sig)
        if gap is None and i:
            gap = layout.members[i].gap
    if gap is None:
        gap = _gap_after(previous, lb, lo, lt)
    if gap is None:
        return usual if usual is not None else _fallback_gap(member)
    if (both_new and member.family in GROUPED_BY_BLANK_LINES and usual is not None and gap.count(b"\n") >= 2
            and member.category == previous.category):
        return usual
    return gap


def _keep_line_end(previous: Member, gap: bytes) -> bytes:
    """A gap begins with what ends the line above (trailing spaces, say): that belongs to ``previous`` as it was
    written, not to whichever pair of neighbours the gap was taken from."""
    mine, theirs = _LINE_END.match(previous.src, previous.end), _LINE_END.match(gap)
    if mine is None or theirs is None:
        return gap  # a member that does not end its line, or a gap within one line
    return mine.group() + gap[theirs.end() :]


def _moved_boundary(member: Member, lb: Layout, lo: Layout, lt: Layout) -> bytes | None:
    """The gap a side chose above a member when it changed what stands above it (deleting the import that was
    there keeps the blank line that ends a group)."""
    before = _predecessor(lb, member.sig)
    gaps = {
        layout.members[layout.index[member.sig]].gap
        for layout in (lo, lt)
        if member.sig in layout.index and _predecessor(layout, member.sig) not in (before, None)
    }
    return gaps.pop() if len(gaps) == 1 else None


def _usual_gap(member: Member, previous: Member, layouts: list[Layout]) -> bytes | None:
    """The commonest gap between two neighbours of these families in any version, None when none stood so."""
    gaps = Counter(
        m.gap
        for layout in layouts
        for p, m in zip(layout.members, layout.members[1:], strict=False)
        if m.family == member.family and p.family == previous.family
    )
    return gaps.most_common(1)[0][0] if gaps else None


def _gap_after(previous: Member, lb: Layout, lo: Layout, lt: Layout) -> bytes | None:
    """The gap a side put below a member it inserted, before whatever followed it there: where the other side's
    insertion now follows it (theirs above ours at the top of a changelog), the blank lines that side chose to
    end its own entry or section with stay as it wrote them."""
    if previous.sig in lb.index:
        return None
    for layout in (lo, lt):
        i = layout.index.get(previous.sig)
        if i is not None and i + 1 < len(layout.members):
            return layout.members[i + 1].gap
    return None


def _predecessor(layout: Layout, sig: str) -> str | None:
    i = layout.index.get(sig)
    return layout.members[i - 1].sig if i else None


def _fallback_gap(member: Member) -> bytes:
    """No two members stood side by side anywhere: a new line at the member's own indentation, or a space in
    a container written on one line."""
    line_start = member.src.rfind(b"\n", 0, member.start) + 1
    indent = member.src[line_start : member.start]
    return b" " if indent.strip() else b"\n" + indent
