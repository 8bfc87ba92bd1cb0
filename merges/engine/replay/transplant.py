"""C2's change moved from C1 onto P: how parallel replay makes a sibling-task conflict from two commits."""

from __future__ import annotations

from merges.engine.alignment import differences, matching_blocks
from merges.engine.resolvers.linemerge import Edit, apply


def transplant(p_text: str, c1_text: str, c2_text: str) -> str | None:
    """C2's change (made on C1) applied to P instead, or None where it edits lines C1 introduced.

    Each C1→C2 edit is mapped onto P through the lines C1 kept from P, with zero context. An insertion
    next to lines C1 introduced lands where C1 inserted them; between two kept lines that were not
    neighbours in P (C1 deleted lines there) its place is unknown, and the pair is dropped as well.
    """
    p, c1, c2 = p_text.split("\n"), c1_text.split("\n"), c2_text.split("\n")
    kept: dict[int, int] = {-1: -1, len(c1): len(p)}  # C1 line → P line, for the lines C1 kept
    for a, b, size in matching_blocks(p, c1):
        kept.update((b + k, a + k) for k in range(size))
    moved: list[Edit] = []
    for i1, i2, j1, j2 in differences(c1, c2):
        if i1 == i2:
            before, after = kept.get(i1 - 1), kept.get(i1)
            if before is None and after is None:
                return None
            if before is not None and after is not None and after != before + 1:
                return None
            at = before + 1 if before is not None else after
            assert at is not None
            moved.append(Edit(at, at, tuple(c2[j1:j2])))
            continue
        lines = [kept.get(i) for i in range(i1, i2)]
        first = lines[0]
        if first is None or lines != list(range(first, first + len(lines))):
            return None
        moved.append(Edit(first, first + len(lines), tuple(c2[j1:j2])))
    return "\n".join(apply(p, moved))
