"""The diffs a reviewer reads: each side of a hunk against the base with its changed words marked, the
lines around the hunk, and what git merged cleanly in the file; and their HTML."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from html import escape  # the plain one: Django's is wrapped for lazy strings, and costs twice as much here

from django.utils.safestring import SafeString, mark_safe

CONTEXT = 3  # lines shown above and below each hunk, as ``diff -U3`` does
WORD = re.compile(r"\w+|\s+|[^\w\s]")
MAX_PAIRED_CHARS = 2000  # past this a changed line is marked whole: word diffs of huge lines cost more than they tell


@dataclass(frozen=True)
class Segment:
    text: str
    changed: bool


@dataclass
class DiffLine:
    op: str  # " ", "-", "+"
    text: str
    segments: list[Segment] | None = None  # the words that differ from the paired line, when it has one
    context: bool = False  # a line around the hunk, not part of it


def line_diff(base: list[str], side: list[str]) -> list[DiffLine]:
    """``side`` against ``base``, line by line, with the changed words of each replaced line marked."""
    out: list[DiffLine] = []
    for op, b1, b2, s1, s2 in difflib.SequenceMatcher(a=base, b=side, autojunk=False).get_opcodes():
        if op == "equal":
            out += [DiffLine(" ", line) for line in base[b1:b2]]
            continue
        removed = [DiffLine("-", line) for line in base[b1:b2]]
        added = [DiffLine("+", line) for line in side[s1:s2]]
        for old, new in zip(removed, added, strict=False):
            old.segments, new.segments = word_diff(old.text, new.text)
        out += removed + added
    return out


def word_diff(old: str, new: str) -> tuple[list[Segment] | None, list[Segment] | None]:
    """Both lines cut into words, those that differ marked; None for a line too long to compare."""
    if len(old) + len(new) > MAX_PAIRED_CHARS:
        return None, None
    a, b = WORD.findall(old), WORD.findall(new)
    left: list[Segment] = []
    right: list[Segment] = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if a2 > a1:
            left.append(Segment("".join(a[a1:a2]), op != "equal"))
        if b2 > b1:
            right.append(Segment("".join(b[b1:b2]), op != "equal"))
    return left, right


def around(merged: list[str], hunks: list[dict], index: int) -> tuple[list[DiffLine], list[DiffLine]]:
    """Up to ``CONTEXT`` lines of git's merged text above and below hunk ``index``, stopping at the
    neighbouring hunks' markers."""
    hunk = hunks[index]
    start, end = hunk["start"] - 1, hunk.get("end") or hunk["start"]
    floor = hunks[index - 1].get("end", 0) if index else 0
    ceiling = hunks[index + 1]["start"] - 1 if index + 1 < len(hunks) else len(merged)
    if ceiling == len(merged) and merged and merged[-1] == "":
        ceiling -= 1  # the text's final newline is no line of its own
    before = merged[max(floor, start - CONTEXT):start]
    after = merged[end:min(ceiling, end + CONTEXT)]
    return ([DiffLine(" ", line, context=True) for line in before],
            [DiffLine(" ", line, context=True) for line in after])


def clean_changes(base_text: str, merged_text: str, hunks: list[dict]) -> list[DiffLine]:
    """What git merged without conflict in a file: the base against git's result with every conflict
    region put back to its base text, so only the clean changes remain."""
    merged = merged_text.split("\n")
    out: list[str] = []
    position = 0
    for hunk in hunks:
        out += merged[position : hunk["start"] - 1] + list(hunk["base"])
        position = hunk["end"]
    out += merged[position:]
    diff = difflib.unified_diff(base_text.split("\n"), out, "base", "merged", n=2, lineterm="")
    lines = list(diff)[2:]  # no file header
    return [DiffLine(line[:1] if line[:1] in "+-" else " ", line[1:] if line[:1] in "+- " else line)
            for line in lines]


def pane_html(lines: list[DiffLine], empty: str = "") -> SafeString:
    """A pane of diff lines as HTML, built here and not in a template loop: a review of hundreds of hunks
    shows tens of thousands of lines and words, and a template loop costs some microseconds each."""
    if not lines:
        return mark_safe(f'<pre class="diff">{escape(empty)}</pre>')
    parts = []
    for line in lines:
        kind = "d ctx" if line.context else {"+": "d add", "-": "d del"}.get(line.op, "d")
        body = ("".join(f"<mark>{escape(s.text)}</mark>" if s.changed else escape(s.text) for s in line.segments)
                if line.segments else escape(line.text))
        parts.append(f'<span class="{kind}">{escape(line.op)}{body}</span>')
    return mark_safe('<pre class="diff">' + "".join(parts) + "</pre>")
