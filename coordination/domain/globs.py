"""Claim patterns: their syntax, what they match, and whether two of them can name the same file.

Pure functions, no Django and no git: the caller passes the claims and the repository's file list.

Pattern syntax, relative to the repository root and case-sensitive like git:

* ``*`` is any run of characters inside one path segment; ``?`` is one character, never ``/``;
* ``[abc]``, ``[a-z]`` and negated ``[!a]`` / ``[^a]`` character classes, also within one segment;
* ``**`` as a whole segment is any number of whole segments, including none: ``a/**`` matches ``a`` itself,
  which makes it the same claim as the plain path ``a``;
* a backslash escapes a glob character (``\\*`` is a literal star).

Gitignore and shell habits that would silently mean something else are errors instead: a leading ``!``,
``{a,b}``, ``./`` or ``..`` segments, absolute paths, backslashes before non-glob characters. Paths given to
``matches`` are repository-relative with ``/`` separators, as ``git ls-files`` prints them.

A plain path (no glob characters) or a pattern ending in ``/`` claims that path and everything below it,
because users write ``src/auth`` or ``src/auth/`` and mean the package. Any other glob matches exactly what it
spells: ``src/*`` is the entries directly in ``src``; ``src/**`` is the tree.

Two patterns overlap when some path can match both, whether or not it exists yet. That is decided exactly
by searching the product of the two patterns' automata (segments for ``**``, characters within a segment),
so an existing file matching both is always found too; the file list only serves to give a real file as
the example in reports.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TypeVar

# One character of a segment: sorted, disjoint, inclusive code-point ranges, never containing "/".
_CharSet = tuple[tuple[int, int], ...]
_STAR = "*"
_GLOBSTAR = "**"
_Atom = _CharSet | str  # a _CharSet, or _STAR
_Segment = tuple[_Atom, ...] | str  # atoms, or _GLOBSTAR
_State = tuple[int, int, bool]  # position in each pattern, and whether a character (or segment) was taken
_T = TypeVar("_T")

_SLASH = ord("/")
_ANY: _CharSet = ((0, _SLASH - 1), (_SLASH + 1, 0x10FFFF))
_ESCAPABLE = "*?[]\\!{}"
_CLASS_ESCAPABLE = _ESCAPABLE + "-^"
_EXAMPLE_CHARS = "xabcdefghijklmnopqrstuvwyz0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZ-."


class BadPattern(ValueError):
    """A claim that is not a valid glob; the message is one line naming the pattern."""


def validate_pattern(pattern: str) -> None:
    """Raise BadPattern for a glob that cannot be honoured, so a bad spec fails at submit time."""
    compile_glob(pattern)


def matches(pattern: str, path: str) -> bool:
    """Whether the claim covers ``path``, a repository-relative path as ``git ls-files`` prints it."""
    return compile_glob(pattern).regex.fullmatch(path) is not None


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some path, existing or not, matches both patterns."""
    return common_path(*sorted((a, b))) is not None


@lru_cache(maxsize=65536)
def literal_head(pattern: str) -> tuple[str, ...]:
    """The leading segments of ``pattern`` that are plain names (no glob character). Two patterns whose heads
    differ at some segment cannot match a common path: a cheap test before the exact search."""
    head = []
    for segment in compile_glob(pattern).segments:
        if segment == _GLOBSTAR or not all(atom != _STAR and len(atom) == 1 and atom[0][0] == atom[0][1]
                                           for atom in segment):
            break
        head.append("".join(chr(atom[0][0]) for atom in segment if not isinstance(atom, str)))
    return tuple(head)


# --- compiling a pattern ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    segments: tuple[_Segment, ...]

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """Compiled on first use: checking a spec's thousands of claims needs their segments only."""
        return re.compile(_regex(self.segments))


@lru_cache(maxsize=65536)
def compile_glob(pattern: str) -> _Compiled:
    def bad(reason: str) -> BadPattern:
        return BadPattern(f"bad pattern {pattern!r}: {reason}")

    if not pattern:
        raise bad("empty")
    if pattern != pattern.strip():
        raise bad("leading or trailing whitespace")
    if pattern.startswith("/"):
        raise bad("absolute path; patterns are relative to the repository root")
    if pattern.startswith("!"):
        raise bad("'!' negation is not supported (write '\\!' for a name starting with '!')")
    subtree = pattern.endswith("/")
    plain = True
    segments: list[_Segment] = []
    for text in (pattern[:-1] if subtree else pattern).split("/"):
        if text in ("", ".", ".."):
            raise bad(f"path segment {text!r} is not allowed; write a normalized path inside the repository")
        if text == _GLOBSTAR:
            plain = False
            if not segments or segments[-1] != _GLOBSTAR:  # a/**/**/b means a/**/b
                segments.append(_GLOBSTAR)
            continue
        atoms, literal = _parse_segment(text, bad)
        plain = plain and literal
        segments.append(atoms)
    if (plain or subtree) and segments[-1] != _GLOBSTAR:
        segments.append(_GLOBSTAR)
    return _Compiled(tuple(segments))


def _parse_segment(text: str, bad: Callable[[str], BadPattern]) -> tuple[tuple[_Atom, ...], bool]:
    """The atoms of one segment, and whether it is a literal name."""
    atoms: list[_Atom] = []
    literal = True
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            char, index = _escaped(text, index, _ESCAPABLE, bad)
            atoms.append(((ord(char), ord(char)),))
            continue
        index += 1
        if char == "*":
            if index < len(text) and text[index] == "*":
                raise bad("'**' must be a whole path segment")
            atoms.append(_STAR)
        elif char == "?":
            atoms.append(_ANY)
        elif char == "[":
            charset, index = _parse_class(text, index, bad)
            atoms.append(charset)
        elif char in "{}":
            raise bad("brace expansion is not supported; write one pattern per alternative")
        else:
            atoms.append(((ord(char), ord(char)),))
            continue
        literal = False
    return tuple(atoms), literal


def _parse_class(text: str, index: int, bad: Callable[[str], BadPattern]) -> tuple[_CharSet, int]:
    """The character class starting after its '[', and the index after its ']'."""
    negated = index < len(text) and text[index] in "!^"
    index += 1 if negated else 0
    ranges: list[tuple[int, int]] = []
    while True:
        if index == len(text):
            raise bad("unclosed '['")
        if text[index] == "]":
            break
        low, index = _class_char(text, index, bad)
        high = low
        if text.startswith("-", index) and index + 1 < len(text) and text[index + 1] != "]":
            high, index = _class_char(text, index + 1, bad)
            if high < low:
                raise bad(f"reversed range '{low}-{high}'")
        ranges.append((ord(low), ord(high)))
    if not ranges:
        raise bad("empty character class")
    charset = _normalize(ranges)
    return (_complement(charset) if negated else _intersect(charset, _ANY)), index + 1


def _class_char(text: str, index: int, bad: Callable[[str], BadPattern]) -> tuple[str, int]:
    if text[index] == "\\":
        return _escaped(text, index, _CLASS_ESCAPABLE, bad)
    return text[index], index + 1


def _escaped(text: str, index: int, escapable: str, bad: Callable[[str], BadPattern]) -> tuple[str, int]:
    # Only glob characters may be escaped, so that a Windows-style 'src\auth' fails instead of meaning 'srcauth'.
    if index + 1 == len(text):
        raise bad("backslash at the end of a segment escapes nothing")
    if text[index + 1] not in escapable:
        raise bad(f"'\\{text[index + 1]}' escapes nothing; separate directories with '/'")
    return text[index + 1], index + 2


def _regex(segments: Sequence[_Segment]) -> str:
    parts: list[str] = []
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        if segment == _GLOBSTAR:
            if index == last:
                parts.append("(?:/[^/]+)*" if index else "[^/]+(?:/[^/]+)*")
            else:
                parts.append("/(?:[^/]+/)*" if index else "(?:[^/]+/)*")
            continue
        if index and segments[index - 1] != _GLOBSTAR:
            parts.append("/")
        parts.extend(_atom_regex(atom) for atom in segment)
    return "".join(parts)


def _atom_regex(atom: _Atom) -> str:
    if isinstance(atom, str):  # _STAR, the one atom that is not a character set
        return "[^/]*"
    if atom == _ANY:
        return "[^/]"
    ranges = [(chr(low), chr(high)) for low, high in atom]
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return re.escape(ranges[0][0])
    return "[" + "".join(re.escape(low) + ("-" + re.escape(high) if high > low else "") for low, high in ranges) + "]"


@lru_cache(maxsize=1024)
def union_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{compile_glob(pattern).regex.pattern})" for pattern in patterns))


# --- character sets ----------------------------------------------------------------------------------------


def _normalize(ranges: Iterable[tuple[int, int]]) -> _CharSet:
    merged: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def _intersect(a: _CharSet, b: _CharSet) -> _CharSet:
    result: list[tuple[int, int]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            result.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(result)


def _complement(charset: _CharSet) -> _CharSet:
    gaps: list[tuple[int, int]] = []
    start = 0
    for low, high in charset:
        if low > start:
            gaps.append((start, low - 1))
        start = high + 1
    if start <= 0x10FFFF:
        gaps.append((start, 0x10FFFF))
    return _intersect(tuple(gaps), _ANY)


def _example_char(charset: _CharSet) -> str:
    """A readable member of a non-empty set, so that example paths in reports look like file names."""
    for char in _EXAMPLE_CHARS:
        if any(low <= ord(char) <= high for low, high in charset):
            return char
    return chr(charset[0][0])


# --- intersecting two patterns -----------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def common_path(a: str, b: str) -> str | None:
    """A non-empty path both patterns match, or None when there is none (exact, not a heuristic)."""
    named_a, named_b = _plain_path(a), _plain_path(b)
    if named_a is not None and named_b is not None:
        # Two plain paths (each claims itself and what is below): the shorter must be the longer or above it.
        # The common case by far, and a ticket of a thousand tasks compares half a million pairs at submit.
        above, below = sorted((named_a, named_b), key=len)
        return below if below == above or below.startswith(above + "/") else None
    return _common_path_search(a, b)


@lru_cache(maxsize=4096)
def _plain_path(pattern: str) -> str | None:
    """The path a pattern names when it is a plain path (``a/b``, ``a/b/``, ``a/b/**``), else None."""
    segments, head = compile_glob(pattern).segments, literal_head(pattern)
    return "/".join(head) if head and len(head) == len(segments) - 1 and segments[-1] == _GLOBSTAR else None


def _common_path_search(a: str, b: str) -> str | None:
    """``common_path`` by searching the product of the two patterns' automata."""
    x, y = compile_glob(a).segments, compile_glob(b).segments

    def step(state: _State) -> Iterator[tuple[str, _State]]:
        i, j, taken = state
        here, there = _at(x, i), _at(y, j)
        if here == _GLOBSTAR:
            yield "", (i + 1, j, taken)
            if there == _GLOBSTAR:
                yield "x", (i, j, True)
            elif there is not None and (name := _common_segment(there, (_STAR,))) is not None:
                yield name, (i, j + 1, True)
        if there == _GLOBSTAR:
            yield "", (i, j + 1, taken)
            if here is not None and here != _GLOBSTAR and (name := _common_segment(here, (_STAR,))) is not None:
                yield name, (i + 1, j, True)
        if isinstance(here, tuple) and isinstance(there, tuple):
            if (name := _common_segment(here, there)) is not None:
                yield name, (i + 1, j + 1, True)

    names = _search((0, 0, False), (len(x), len(y), True), step)
    return None if names is None else "/".join(name for name in names if name)


@lru_cache(maxsize=65536)
def _common_segment(x: _Segment, y: _Segment) -> str | None:
    """A non-empty segment name matching both atom sequences, or None."""

    def step(state: _State) -> Iterator[tuple[str, _State]]:
        i, j, taken = state
        here, there = _at(x, i), _at(y, j)
        if here == _STAR:
            yield "", (i + 1, j, taken)
        if there == _STAR:
            yield "", (i, j + 1, taken)
        if here is None or there is None:
            return
        if isinstance(here, tuple) and isinstance(there, tuple):
            chars, following = _intersect(here, there), (i + 1, j + 1, True)
        elif isinstance(here, tuple):  # there is a star
            chars, following = here, (i + 1, j, True)
        elif isinstance(there, tuple):  # here is a star
            chars, following = there, (i, j + 1, True)
        else:  # two stars take any character together
            chars, following = _ANY, (i, j, True)
        if chars:
            yield _example_char(chars), following

    chars = _search((0, 0, False), (len(x), len(y), True), step)
    return None if chars is None else "".join(chars)


def _at(items: Sequence[_T], index: int) -> _T | None:
    return items[index] if index < len(items) else None


def _search(start: _State, goal: _State, step: Callable[[_State], Iterable[tuple[str, _State]]]) -> list[str] | None:
    """Breadth-first search of a product automaton: the labels along a path to ``goal``, or None."""
    parents: dict[_State, tuple[_State, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        if state == goal:
            labels: list[str] = []
            while (link := parents[state]) is not None:
                state, label = link
                labels.append(label)
            return labels[::-1]
        for label, following in step(state):
            if following not in parents:
                parents[following] = (state, label)
                queue.append(following)
    return None
