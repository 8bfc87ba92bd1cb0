"""C2's change moved from C1 onto P: how parallel replay makes a sibling-task conflict from two commits."""

from __future__ import annotations

from dataclasses import dataclass, field

from merges.engine.alignment import differences, matching_blocks
from merges.engine.resolvers.linemerge import Edit, apply
from merges.engine.resolvers.structured import owners


@dataclass(frozen=True)
class Transplant:
    text: str
    # insertions C2 made next to lines C1 introduced, which land where C1 inserted them: (C2 line, line in
    # the transplant, count), 0-based
    beside_new: list[tuple[int, int, int]] = field(default_factory=list)

    def moved_away(self, path: str, c2_text: str) -> bool:
        """Whether such an insertion belonged, in C2, to something else than where it landed: a decorator of
        the function C1 added, statements at the end of C1's new body (told by syntax; a file no profile
        reads is taken as it is). Merged, it would change what it does: the pair shows no real conflict."""
        for c2_line, line, count in self.beside_new:
            mine, landed = owners(path, c2_text, c2_line, c2_line + count), owners(path, self.text, line, line + count)
            if mine is not None and landed is not None and mine != landed:
                return True
        return False


def transplant(p_text: str, c1_text: str, c2_text: str) -> Transplant | None:
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
    beside_new: list[tuple[int, int, int]] = []
    shift = 0  # lines the edits so far added to P (they come in P's order)
    for i1, i2, j1, j2 in differences(c1, c2):
        if i1 == i2:
            before, after = kept.get(i1 - 1), kept.get(i1)
            if before is None and after is None:
                return None
            if before is not None and after is not None and after != before + 1:
                return None
            at = before + 1 if before is not None else after
            assert at is not None
            if _beside_new(c1, kept, i1):
                beside_new.append((j1, at + shift, j2 - j1))
            moved.append(Edit(at, at, tuple(c2[j1:j2])))
            shift += j2 - j1
            continue
        lines = [kept.get(i) for i in range(i1, i2)]
        first = lines[0]
        if first is None or lines != list(range(first, first + len(lines))):
            return None
        moved.append(Edit(first, first + len(lines), tuple(c2[j1:j2])))
        shift += (j2 - j1) - len(lines)
    return Transplant("\n".join(apply(p, moved)), beside_new)


def _beside_new(c1: list[str], kept: dict[int, int], at: int) -> bool:
    """Whether the nearest lines with text above or below C1's line ``at`` are lines C1 introduced (blank
    lines are skipped: a blank line C1 added may have been matched to one of P's)."""
    above = next((i for i in range(at - 1, -1, -1) if c1[i].strip()), -1)
    below = next((i for i in range(at, len(c1)) if c1[i].strip()), len(c1))
    return above not in kept or below not in kept
