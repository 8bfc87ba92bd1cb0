"""A file's syntax tree written so that two texts meaning the same thing write the same: the measure of
"equivalent" in ``dagmerge replay``.

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
