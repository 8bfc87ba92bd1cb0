"""A commutative container read as prefix, members and suffix, each member a whole node with its comments.

Between two members there is only whitespace (the *gap*): comments on a line of their own belong to the
member below them (the way people write them), a comment on the member's last line belongs to it, and a
separator (``,``) is noted rather than kept, so that the last member can do without it. Blank lines are layout,
not content: a member that only moved up or down a line is unchanged.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

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
    repeated: set[str] = field(default_factory=set)  # names more than one member carries
    spans: list[tuple[int, int]] = field(default_factory=list)  # line spans: prefix, members, suffix

    @property
    def trailing_separator(self) -> bool:
        return bool(self.members) and self.members[-1].sep

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
        return Layout(text(node, src), [], b"")
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
    layout = Layout(prefix, members, suffix)
    _name_uniquely(layout)
    layout.spans = _line_spans(node, layout, src)
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


def _name_uniquely(layout: Layout) -> None:
    counts = Counter(member.name for member in layout.members)
    seen: Counter[str] = Counter()
    for member in layout.members:
        if counts[member.name] > 1:
            seen[member.name] += 1
            member.sig = f"{member.name}#{seen[member.name]}"
            layout.repeated.add(member.name)


def _line_spans(node: Node, layout: Layout, src: bytes) -> list[tuple[int, int]]:
    def line(offset: int) -> int:
        return src.count(b"\n", node.start_byte, offset)

    spans = []
    if layout.prefix.strip():
        spans.append((0, line(node.start_byte + len(layout.prefix.rstrip())) + 1))
    for member in layout.members:
        spans.append((line(member.start), line(member.end) + 1))
    if layout.suffix.strip():
        start = node.end_byte - len(layout.suffix.lstrip())
        spans.append((line(start), line(node.end_byte) + 1))
    return spans


def crosses_boundaries(base: Layout, base_text: bytes, side_text: bytes) -> bool:
    """True when a side replaced or deleted lines that run from inside one member into another (or into the
    container's own delimiters) without taking all of them: such an edit is not a change of whole children."""
    before, after = base_text.splitlines(keepends=True), side_text.splitlines(keepends=True)
    for tag, i1, i2, _, _ in SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag not in ("replace", "delete"):
            continue
        hit = [(lo, hi) for lo, hi in base.spans if lo < i2 and i1 < hi]
        if len(hit) >= 2 and any(not (i1 <= lo and hi <= i2) for lo, hi in hit):
            return True
    return False
