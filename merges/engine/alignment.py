"""Lines of two texts matched in order, and a whole-file answer cut back into the hunks of git's merged text.

Shared by the tiers that answer with a whole file (the structured tier, the agent), which must still say
what they did hunk by hunk, and by replay, which aligns texts to judge and to transplant changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from merges.engine.conflicts import Hunk


def matching_blocks(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int]]:
    """(i, j, n): a[i:i+n] == b[j:j+n], in order. The common ends -- most of two versions of a file -- are
    matched first, so difflib only looks at the middle."""
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]:
        suffix += 1
    middle = SequenceMatcher(None, a[prefix : len(a) - suffix], b[prefix : len(b) - suffix], autojunk=False)
    blocks = [(prefix + i, prefix + j, n) for i, j, n in middle.get_matching_blocks() if n]
    return [(0, 0, prefix), *blocks, (len(a) - suffix, len(b) - suffix, suffix)]


def differences(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """(i1, i2, j1, j2): a[i1:i2] became b[j1:j2], between the matching blocks."""
    found = []
    i = j = 0
    for block_i, block_j, size in matching_blocks(a, b):
        if (i, j) != (block_i, block_j):
            found.append((i, block_i, j, block_j))
        i, j = block_i + size, block_j + size
    return found


def split_proposal(merged_text: str, hunks: Sequence[Hunk], proposal: str) -> list[list[str]] | None:
    """Cut a whole-file answer into the lines that replace each hunk of git's merged text, so a person can
    take or undo it hunk by hunk (and a tier can say what settled each). None when the answer also changed
    text outside the hunks (then it can only be taken whole)."""
    merged = merged_text.split("\n")
    answer = proposal.split("\n")
    outside = list(merged)
    for hunk in hunks:  # only the text around the hunks is aligned: no line of a hunk can match
        outside[hunk.start - 1 : hunk.end] = [f"\0{i}" for i in range(hunk.start - 1, hunk.end)]
    to_answer = {a + k: b + k for a, b, size in matching_blocks(outside, answer) for k in range(size)}
    pieces, out, position, cursor = [], [], 0, 0
    for hunk in hunks:
        start, end = hunk.start - 1, hunk.end
        before = [to_answer[i] for i in range(position, start) if i in to_answer]
        after = next((to_answer[i] for i in range(end, len(merged)) if i in to_answer), len(answer))
        low = before[-1] + 1 if before else cursor
        if low > after:
            return None
        pieces.append(answer[low:after])
        out += merged[position:start] + answer[low:after]
        position, cursor = end, after
    return pieces if out + merged[position:] == answer else None
