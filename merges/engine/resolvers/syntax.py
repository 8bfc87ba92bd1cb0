"""The structured tier as a rung of the ladder: the whole file merged by syntax, cut back into git's hunks.

``merge_structured`` answers with a whole file; the ladder speaks in hunks, each settled by one resolver for
one reason. The answer is cut at git's hunks (it must leave every line git merged cleanly as git did, or it
is not used), and each piece is attributed to the settled region it falls in: the commutative parent's kind
and the order rule, "kept both: class members, sorted by name". A piece that meets no region (only blank
lines, say) is not attributed and stays for the next tier.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from merges.engine.alignment import split_proposal
from merges.engine.conflicts import Hunk
from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.structured import ORDER_RULES, SettledRegion, merge_structured

STRUCTURED = "structured"


@dataclass(frozen=True)
class SyntaxCut:
    """The structured merge's lines for one hunk; ``kind`` and ``order`` of the region that settled them,
    both "" when none did."""

    lines: list[str]
    kind: str = ""
    order: str = ""


def cut_by_syntax(merged_text: str, hunks: Sequence[Hunk], path: str, sides: Sides,
                  order_rules: Collection[str] = ORDER_RULES) -> list[SyntaxCut] | None:
    """One cut per hunk of git's ``merged_text``, or None when the structured merge declines the file, needed
    no structure, or changed what git merged outside the hunks."""
    if sides.base is None or sides.ours is None or sides.theirs is None:
        return None
    merged = merge_structured(path, sides.base, sides.ours, sides.theirs, order_rules)
    if merged is None or not merged.regions:
        return None
    pieces = split_proposal(merged_text, hunks, merged.text)
    if pieces is None:
        return None
    cuts = []
    line, position = 1, 0  # the piece's first line in the structured text; git's line after the last hunk
    for hunk, piece in zip(hunks, pieces, strict=True):
        line += hunk.start - 1 - position
        cuts.append(_attributed(piece, line, merged.regions))
        line, position = line + len(piece), hunk.end
    return cuts


def _attributed(piece: list[str], first: int, regions: Sequence[SettledRegion]) -> SyntaxCut:
    """The innermost region holding the piece (an empty piece: its place), else every region it meets."""
    last = max(first, first + len(piece) - 1)
    if piece and not any(line.strip() for line in piece):
        return SyntaxCut(piece)  # blank lines only: layout, which no region claims
    met = [r for r in regions if r.start_line <= last and r.end_line >= min(first, first + len(piece) - 1)]
    holding = [r for r in met if r.start_line <= first and last <= r.end_line]
    if holding:
        met = [min(holding, key=lambda r: r.end_line - r.start_line)]
    if not met:
        return SyntaxCut(piece)
    kinds = dict.fromkeys(r.kind for r in met)
    orders = dict.fromkeys(rule for r in met for rule in r.order.split(", "))
    return SyntaxCut(piece, " and ".join(kinds), ", ".join(orders))
