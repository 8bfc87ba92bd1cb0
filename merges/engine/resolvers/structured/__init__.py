"""The structured tier: both sides' changes to distinct children of a commutative parent, merged by syntax.

Line-based rules cannot tell whether two insertions at one place may stand in either order; the syntax tree
can: module-level definitions, class members, imports, object keys, mapping keys, list items of a changelog
are children of a parent whose order carries no meaning (a *commutative parent*, as in Mergiraf and Spork,
re-done here from their published idea). Base, ours and theirs are parsed with tree-sitter (changelogs by
their list structure); where the sides inserted, deleted or edited distinct children of such a parent, the
merge is built from whole nodes, each with its comments and its layout, and the children both sides put at one
place follow the order the container already shows (see ``order``).

It declines -- returns None, for the next tier -- when the language is unknown or a side does not parse; when
both sides add a child with the same name (two ``def parse``, two keys ``"name"``, two routes for one path);
when a side's edit crosses node boundaries, deletes what the other edited, or moves children; when both sides
edit one node that is not a container; and when the merged text does not parse back to a tree holding every
child placed in a merged container.

Pure: the standard library and tree-sitter only, no Django and no other dagmerge module.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from merges.engine.resolvers.structured.canonical import canonical_form, owners
from merges.engine.resolvers.structured.languages import profile_for
from merges.engine.resolvers.structured.merge import Out, Piece, TreeMerge, trivial
from merges.engine.resolvers.structured.model import (
    AS_PLACED,
    FINISH_ORDER,
    GROUPED,
    NEWEST_FIRST,
    ORDER_RULES,
    SORTED,
    Node,
    Profile,
    end_of,
)

__all__ = [
    "AS_PLACED",
    "FINISH_ORDER",
    "GROUPED",
    "NEWEST_FIRST",
    "ORDER_RULES",
    "SORTED",
    "SettledRegion",
    "StructuredMerge",
    "merge_structured",
    "owners",
    "profile_for",
    "canonical_form",
]


@dataclass(frozen=True)
class SettledRegion:
    """In a commutative parent both sides changed, a run of new or changed children: the parent's kind, the
    rule that ordered the new ones, and where the run is in the merged text (1-based lines, inclusive). A
    conflict hunk is settled by the innermost region that covers it.

    ``order`` is one of "sorted by name", "grouped by prefix", "newest first", "finish order" (ours, then
    theirs) -- or "as placed" when no two sides' children competed for one place (each stands where its side
    put it; edited children too) -- several joined by ", " when runs met."""

    kind: str  # "class members", "module definitions", "imports", "object keys", "changelog entries", ...
    order: str
    start_line: int
    end_line: int

    def describe(self) -> str:
        return f"kept both: {self.kind}, {self.order}"


@dataclass(frozen=True)
class StructuredMerge:
    """The merged file. ``regions`` is empty when the merge needed no structure (a side left the file as it
    was, or both made the same change); ``language`` names the profile that read it ("python", "changelog")."""

    text: str
    regions: tuple[SettledRegion, ...]
    language: str


def merge_structured(
    path: str, base: str, ours: str, theirs: str, order_rules: Collection[str] = ORDER_RULES
) -> StructuredMerge | None:
    """Merge three versions of the file at ``path`` by its syntax, or None to leave it to the next tier.

    ``ours`` is the side already merged (the ticket head), ``theirs`` the one being merged in: "finish order"
    puts ours' insertions first, "newest first" theirs. ``order_rules``: the rules that may order insertions
    both sides made at one place (others are declined); ``dagmerge replay`` measures each by leaving it out.
    """
    profile = profile_for(path)
    if profile is None:
        return None
    try:
        srcs = (base.encode(), ours.encode(), theirs.encode())
    except UnicodeEncodeError:
        return None
    roots = [profile.parse(src) for src in srcs]
    if roots[0] is None or roots[1] is None or roots[2] is None:
        return None
    piece = _merge_file(TreeMerge(profile, srcs, order_rules), srcs, (roots[0], roots[1], roots[2]))
    if piece is None or not _reparses(profile, piece):
        return None
    try:
        merged = piece.data.decode()
    except UnicodeDecodeError:
        return None
    regions = tuple(
        SettledRegion(r.kind, r.order, _line(piece.data, r.start), _line(piece.data, max(r.start, r.end - 1)))
        for r in sorted(piece.regions, key=lambda r: (r.start, -r.end))
    )
    return StructuredMerge(merged, regions, profile.name)


def _merge_file(merger: TreeMerge, srcs: tuple[bytes, bytes, bytes], roots: tuple[Node, Node, Node]) -> Piece | None:
    """The roots merged, with what a grammar leaves outside its root (blank lines, a trailing newline)."""
    heads = [src[: root.start_byte] for src, root in zip(srcs, roots, strict=True)]
    tails = [src[root.end_byte :] for src, root in zip(srcs, roots, strict=True)]
    head, tail, body = trivial(*heads), trivial(*tails), merger.node(*roots)
    if head is None or tail is None or body is None:
        return None
    out = Out()
    out.add(head)
    out.add_piece(body)
    out.add(tail)
    return out.done()


def _reparses(profile: Profile, piece: Piece) -> bool:
    """The merged text parses, and each child placed in a merged container is a node of its kind exactly
    where it was put (a lost separator or a swallowed line shows here)."""
    root = profile.parse(piece.data)
    if root is None:
        return False
    return all(_holds(root, start, end, kind, piece.data) for start, end, kind in piece.checks)


def _holds(root: Node, start: int, end: int, kind: str, src: bytes) -> bool:
    find = getattr(root, "descendant_for_byte_range", None)
    if find is not None:  # tree-sitter: from the smallest node holding the range up to those starting with it
        node = find(start, end)
        while node is not None and node.start_byte == start:
            if node.type == kind and end_of(node, src) == end:
                return True
            node = node.parent
        return False
    stack = [root]
    while stack:
        node = stack.pop()
        if node.start_byte > start or node.end_byte < end:
            continue
        if node.start_byte == start and node.type == kind and end_of(node, src) == end:
            return True
        stack.extend(node.children)
    return False


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
