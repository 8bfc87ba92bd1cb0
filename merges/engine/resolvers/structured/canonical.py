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
        return _hash(node.type, "{", squash(layout.prefix), *members, squash(layout.suffix), "}")
    if not node.children:
        return _hash(node.type, squash(text(node, src)))
    return _hash(node.type, "(", *(_digest(child, src, profile) for child in node.children), ")")


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
    while node is not None:
        name = profile.signature(node, src)
        if name is not None:
            names.append(name)
        node = node.parent
    return tuple(reversed(names))


def _holding(root: Node, start: int, end: int) -> Node:
    """The smallest node holding bytes [start, end)."""
    node = root
    while True:
        inner = next((kid for kid in node.children if kid.start_byte <= start and end <= kid.end_byte), None)
        if inner is None:
            return node
        node = inner
