"""A commutative container read as prefix, members and suffix, each member a whole node with its comments.

Between two members there is only whitespace (the *gap*): comments on a line of their own belong to the
member below them (the way people write them), a comment on the member's last line belongs to it, and a
separator (``,``) is noted rather than kept, so that the last member can do without it. Blank lines are layout,
not content: a member that only moved up or down a line is unchanged.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import cached_property

from merges.engine.resolvers.structured.model import Container, Node, Profile, end_of, squash, text

_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n\s*")


@dataclass(eq=False)
class Member:
    """One child of a container in one version, with what travels with it."""

    node: Node
    src: bytes
    sig: str  # unique in its container ("#2" added to repeated names)
    name: str  # the signature as the profile gave it
    start: int  # where its comments begin
    end: int  # after its separator and same-line comment
    lead: bytes  # comments and attributes above the node
    core: bytes  # the node itself
    term: bytes  # a terminator that closes it (";")
    post: bytes  # what follows the separator on its last line (a comment)
    sep: bool = False
    repeat: str | None = None  # the signature it shares with another member, before numbering
    gap: bytes = b""  # whitespace before it; empty for the first member
    family: str = "member"
    category: str | None = None
    keys: tuple[object, ...] = ()

    @property
    def content(self) -> bytes:
        return self.lead + self.core + self.term + self.post


@dataclass
class Layout:
    prefix: bytes
    members: list[Member]
    suffix: bytes
    start: int = 0  # the container's bytes in its source
    end: int = 0
    repeated: set[str] = field(default_factory=set)  # names more than one member carries

    @property
    def trailing_separator(self) -> bool:
        return bool(self.members) and self.members[-1].sep

    @cached_property
    def index(self) -> dict[str, int]:
        return {member.sig: i for i, member in enumerate(self.members)}


def read_layout(node: Node, spec: Container, profile: Profile, src: bytes) -> Layout | None:
    """The container's members, or None when something other than members, comments and separators
    stands between them (then the parent is not the plain list of children this tier knows how to merge)."""
    kids = list(node.children)

    def is_comment(kid: Node) -> bool:
        return kid.type in profile.comments

    fields = [_field(node, i) for i in range(len(kids))] if spec.member_field else []

    def is_member(i: int) -> bool:
        kid = kids[i]
        if is_comment(kid):
            return False
        if spec.member_field:
            return fields[i] == spec.member_field
        return kid.is_named if spec.members is None else kid.type in spec.members

    indices = [i for i in range(len(kids)) if is_member(i)]
    if not indices:
        return Layout(text(node, src), [], b"", node.start_byte, node.end_byte)
    first, last = indices[0], indices[-1]
    members: list[Member] = []
    pending: int | None = None  # start of comments waiting for the member below them
    state = "none"  # after "core", "sep" or "comment" of the last member
    for i, kid in enumerate(kids):
        token = text(kid, src)
        previous = members[-1] if members else None
        if is_member(i):
            start = kid.start_byte if pending is None else pending
            core_end = end_of(kid, src)
            members.append(_member(kid, src, start, core_end, profile))
            pending, state = None, "core"
        elif previous and state == "core" and not kid.is_named and token in spec.terminators:
            previous.term = src[previous.end : kid.end_byte]
            previous.end = kid.end_byte
        elif previous and state == "core" and spec.separator and not kid.is_named and token == spec.separator:
            previous.sep, previous.end, state = True, kid.end_byte, "sep"
        elif is_comment(kid):
            if previous and pending is None and b"\n" not in src[previous.end : kid.start_byte]:
                previous.post += src[previous.end : end_of(kid, src)]  # a comment on the member's last line
                previous.end, state = end_of(kid, src), "comment"
            elif i < last:
                pending = kid.start_byte if pending is None else pending
        elif first < i < last:
            return None  # a token between members that is neither a separator nor a terminator
        else:
            pending = None  # an opening delimiter between leading comments and the first member
    for previous, member in zip(members, members[1:], strict=False):
        member.gap = src[previous.end : member.start]
        if member.gap.strip():
            return None
    _detach_header(members[0], src)
    for member in members:
        member.lead = src[member.start : member.node.start_byte]
    prefix = src[node.start_byte : members[0].start]
    suffix = src[members[-1].end : node.end_byte]
    layout = Layout(prefix, members, suffix, node.start_byte, node.end_byte)
    name_uniquely(layout)
    return layout


def _field(node: Node, i: int) -> str | None:
    getter = getattr(node, "field_name_for_child", None)
    return getter(i) if getter else None


def _member(kid: Node, src: bytes, start: int, core_end: int, profile: Profile) -> Member:
    name = profile.signature(kid, src) or f"{kid.type}:{squash(text(kid, src))}"
    category = profile.category(kid, src)
    keys = tuple(profile.sort_keys(kid, src, name)) if profile.sort_keys else (name, name.casefold())
    return Member(
        node=kid,
        src=src,
        sig=name,
        name=name,
        start=start,
        end=core_end,
        lead=b"",
        core=src[kid.start_byte : core_end],
        term=b"",
        post=b"",
        family=profile.family(kid, src),
        category=category,
        keys=keys,
    )


def _detach_header(member: Member, src: bytes) -> None:
    """Comments above the first member and set off from it by a blank line head the file or block (a
    licence, a section title): they stay in the prefix when someone inserts above that member."""
    lead = src[member.start : member.node.start_byte]
    blanks = list(_BLANK_LINE.finditer(lead))
    if blanks:
        member.start += blanks[-1].end()


def name_uniquely(layout: Layout, by_text: set[str] | None = None) -> None:
    """Give every member a signature unique in its container. Members whose name is in ``by_text`` (a name
    some version repeats: ``from flask import a`` and ``from flask import b`` on lines of their own, overloads)
    are known by name and text; what still repeats is numbered, and kept only if no side touches it."""
    for member in layout.members:
        member.sig = f"{member.name} | {squash(member.content)}" if by_text and member.name in by_text else member.name
        member.repeat = None
    counts = Counter(member.sig for member in layout.members)
    seen: Counter[str] = Counter()
    layout.repeated = set()
    for member in layout.members:
        if counts[member.sig] > 1:
            seen[member.sig] += 1
            layout.repeated.add(member.sig)
            member.repeat, member.sig = member.sig, f"{member.sig}#{seen[member.sig]}"
    layout.__dict__.pop("index", None)  # the cached index is stale


def crosses_boundaries(base: Layout, side: Layout) -> bool:
    """True when a side replaced or deleted lines that run from inside one member into another (or into the
    container's own delimiters) without taking all of them: such an edit is not a change of whole children.

    Only the stretches between members the side left alone are compared line by line, so a large file costs
    what its changes cost."""
    src_b, src_s = base.members[0].src if base.members else b"", side.members[0].src if side.members else b""
    if not src_b or not src_s:
        return False
    # anchors: (base start, base end, side start, side end) of what the side kept as it was, in order
    anchors = [(base.start, base.start + len(base.prefix), side.start, side.start + len(side.prefix))]
    if base.prefix != side.prefix:
        anchors = [(base.start, base.start, side.start, side.start)]
    for member in base.members:
        i = side.index.get(member.sig)
        if i is not None and side.members[i].content == member.content:
            twin = side.members[i]
            if twin.start < anchors[-1][3]:
                return True  # moved
            anchors.append((member.start, member.end, twin.start, twin.end))
    if base.suffix == side.suffix:
        anchors.append((base.end - len(base.suffix), base.end, side.end - len(side.suffix), side.end))
    else:
        anchors.append((base.end, base.end, side.end, side.end))
    items = [(base.start, base.start + len(base.prefix.rstrip()))] if base.prefix.strip() else []
    items += [(member.start, member.end) for member in base.members]
    if base.suffix.strip():
        items.append((base.end - len(base.suffix.lstrip()), base.end))
    k = 0
    for (_, low_b, _, low_s), (high_b, _, high_s, _) in itertools.pairwise(anchors):
        inside = []
        while k < len(items) and items[k][0] < high_b:  # items and anchors both run in file order
            if low_b <= items[k][0] and items[k][1] <= high_b and items[k][0] < items[k][1]:
                inside.append(items[k])
            k += 1
        if inside and _crossing(src_b[low_b:high_b], src_s[low_s:high_s], low_b, inside):
            return True
    return False


def _crossing(before: bytes, after: bytes, offset: int, items: list[tuple[int, int]]) -> bool:
    newlines = [offset + m.start() for m in re.finditer(b"\n", before)]

    def line(position: int) -> int:
        return bisect.bisect_left(newlines, position)

    spans = [(line(start), line(end) + 1) for start, end in items]
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    for tag, i1, i2, _, _ in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            hit = [(lo, hi) for lo, hi in spans if lo < i2 and i1 < hi]
            if len(hit) >= 2 and any(not (i1 <= lo and hi <= i2) for lo, hi in hit):
                return True
    return False
