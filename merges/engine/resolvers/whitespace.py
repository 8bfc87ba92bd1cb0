"""History-safe resolvers: hunks whose two sides differ only in whitespace layout.

They hold whatever the sides meant, because neither side's words are lost: git's own
``-Xignore-space-change`` makes the same calls, but only where indentation is equal, since indentation
is syntax in Python and YAML.
"""

from __future__ import annotations

from difflib import SequenceMatcher

from merges.engine.resolvers.context import HunkContext, copies_disagree, layout_key


def same_change(ctx: HunkContext) -> list[str] | None:
    """Both sides made the same change, laid out differently: ours is kept, as git does."""
    hunk = ctx.hunk
    if layout_key(hunk.ours) == layout_key(hunk.theirs):
        return list(hunk.ours)
    return None


def whitespace_only(ctx: HunkContext) -> list[str] | None:
    """One side only re-spaced lines the other side changed: the change is kept, and so is the re-spacing of
    the lines the change left as they were: replayed (parallel, eighteen repositories), the author kept both in
    all 8 such hunks -- trailing spaces trimmed next to a changed line stayed trimmed.

    Declines when the re-spacing side only added or removed blank lines (blank lines part blocks, and in
    replayed history people rewrote such spots 3 times in 22, against 0 in 21 for re-spaced text lines),
    or when the change brings a line the other side changed or added elsewhere (``copies_disagree``).
    """
    hunk = ctx.hunk
    base = layout_key(hunk.base)
    if _respaced_text(hunk.ours, hunk.base) and layout_key(hunk.ours) == base and not copies_disagree(
            ctx, [], hunk.theirs):
        return _respaced(hunk.base, hunk.ours, hunk.theirs)
    if _respaced_text(hunk.theirs, hunk.base) and layout_key(hunk.theirs) == base and not copies_disagree(
            ctx, hunk.ours, []):
        return _respaced(hunk.base, hunk.theirs, hunk.ours)
    return None


def _respaced(base: list[str], respaced: list[str], changed: list[str]) -> list[str]:
    """The changed side's lines, those it kept from the base as the other side re-spaced them. Only when the
    re-spacing went line by line (no blank line added or removed); otherwise the changed side as it is."""
    if len(respaced) != len(base) or any(layout_key([a]) != layout_key([b]) for a, b in zip(base, respaced,
                                                                                               strict=True)):
        return list(changed)
    merged: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, base, changed, autojunk=False).get_opcodes():
        merged += respaced[i1:i2] if tag == "equal" else changed[j1:j2]
    return merged


def _respaced_text(side: list[str], base: list[str]) -> bool:
    """Whether the side changed a line with text on it (not only blank lines)."""
    return [line for line in side if line.strip()] != [line for line in base if line.strip()]
