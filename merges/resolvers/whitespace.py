"""History-safe resolvers: hunks whose two sides differ only in whitespace layout.

They hold whatever the sides meant, because neither side's words are lost: git's own
``-Xignore-space-change`` makes the same calls, but only where indentation is equal, since indentation
is syntax in Python and YAML.
"""

from __future__ import annotations

from merges.resolvers.context import HunkContext, layout_key


def same_change(ctx: HunkContext) -> list[str] | None:
    """Both sides made the same change, laid out differently: ours is kept, as git does."""
    hunk = ctx.hunk
    if layout_key(hunk.ours) == layout_key(hunk.theirs):
        return list(hunk.ours)
    return None


def whitespace_only(ctx: HunkContext) -> list[str] | None:
    """One side only re-laid out lines the other side changed: the change is kept."""
    hunk = ctx.hunk
    base = layout_key(hunk.base)
    if layout_key(hunk.ours) == base:
        return list(hunk.theirs)
    if layout_key(hunk.theirs) == base:
        return list(hunk.ours)
    return None
