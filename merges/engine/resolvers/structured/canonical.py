"""A file's syntax tree written so that two texts meaning the same thing write the same: the measure of
"equivalent" in ``dagmerge replay``; and the named nodes around a stretch of lines (``owners``), which tells
replay whether a change moved from one place to another still belongs to the same thing.

Layout does not count (whitespace between tokens, blank lines, a trailing separator), nor the order of the
members of a commutative parent -- the parents the merge treats as sets, read by the same profiles and the
same layout reader, so what the tier may reorder is exactly what this form ignores. Everything else counts:
tokens, comments (with the member they belong to), and the order of every other child.
"""

from __future__ import annotations

import hashlib

from merges.engine.resolvers.structured.languages import profile_for
from merges.engine.resolvers.structured.layout import Member, read_layout
from merges.engine.resolvers.structured.model import Node, Profile, squash, text


def canonical_form(path: str, data: str) -> str | None:
    """A digest of ``data`` read as the file at ``path``; None when no profile reads that file, when the text
    does not parse, or when the tree is too deep to walk."""
    profile = profile_for(path)
    if profile is None:
        return None
    try:
        src = data.encode()
    except UnicodeEncodeError:
        return None
    root = profile.parse(src)
    if root is None:
        return None
    try:
        return _digest(root, src, profile)
    except RecursionError:
        return None


def _digest(node: Node, src: bytes, profile: Profile) -> str:
    spec = profile.container(node, src)
    layout = read_layout(node, spec, profile, src) if spec is not None else None
    if layout is not None and layout.members:
        members = sorted(_member(member, profile) for member in layout.members)
        head = _stretch(node, src, profile, node.start_byte, layout.members[0].start)
        tail = _stretch(node, src, profile, layout.members[-1].end, node.end_byte)
        return _hash(node.type, *head, "{", *members, "}", *tail)
    if not node.children:
        return _hash(node.type, squash(text(node, src)))
    return _hash(node.type, "(", *_stretch(node, src, profile, node.start_byte, node.end_byte), ")")


def _stretch(node: Node, src: bytes, profile: Profile, start: int, end: int) -> list[str]:
    """The children of ``node`` within [start, end), with the text between them: some grammars leave words out
    of the tree (Markdown's inline text), and a container's heading may hold lists of its own."""
    parts, at = [], start
    for child in node.children:
        if child.start_byte < start or child.end_byte > end:
            continue
        if not child.children and not squash(text(child, src)):
            continue  # an empty token (a block's continuation, an indent): layout
        parts += [squash(src[at : child.start_byte]), _digest(child, src, profile)]
        at = max(at, child.end_byte)
    return [*parts, squash(src[at:end])]


def _member(member: Member, profile: Profile) -> str:
    """A member with what travels with it (its comments, its terminator), not its separator: layout."""
    core = _digest(member.node, member.src, profile)
    return _hash("member", squash(member.lead), core, squash(member.term), squash(member.post))


def _hash(*parts: str) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()


def owners(path: str, data: str, first_line: int, end_line: int) -> tuple[str, ...] | None:
    """The names (profile signatures) of the nodes holding lines [first_line, end_line) (0-based) of ``data``,
    outermost first: ``("class TestDoctest", "def test_skip")``. None when no profile reads the file, it does
    not parse, or the lines are blank."""
    profile = profile_for(path)
    if profile is None:
        return None
    src = data.encode()
    root = profile.parse(src)
    if root is None:
        return None
    lines = src.split(b"\n")
    start = sum(len(line) + 1 for line in lines[:first_line])
    end = start + sum(len(line) + 1 for line in lines[first_line:end_line])
    stretch = src[start:end]
    if not stretch.strip():
        return None
    start, end = start + len(stretch) - len(stretch.lstrip()), start + len(stretch.rstrip())
    names = []
    node: Node | None = _holding(root, start, end)
    assert node is not None
    if node.type in profile.comments and node.parent is not None:
        node = node.parent
    below = _below_comments(node, start, end, profile)
    if below is not None:  # comments on lines of their own belong to the member below them
        names.append(profile.signature(below, src) or below.type)
    while node is not None:
        name = profile.signature(node, src)
        if name is not None:
            names.append(name)
        node = node.parent
    return tuple(reversed(names))


def _below_comments(node: Node, start: int, end: int, profile: Profile) -> Node | None:
    """When the stretch is only comments among ``node``'s children, the first other child after them."""
    inside = [kid for kid in node.children if kid.start_byte < end and kid.end_byte > start]
    if not inside or any(kid.type not in profile.comments for kid in inside):
        return None
    return next((kid for kid in node.children if kid.start_byte >= end and kid.type not in profile.comments), None)


def _holding(root: Node, start: int, end: int) -> Node:
    """The smallest node holding bytes [start, end)."""
    node = root
    while True:
        inner = next((kid for kid in node.children if kid.start_byte <= start and end <= kid.end_byte), None)
        if inner is None:
            return node
        node = inner
