"""Changelogs (plain text, reStructuredText, Markdown) read by their list structure.

No grammar is needed: a changelog is headings (``# x``, or a title underlined -- and maybe overlined -- with a
row of ``=``, ``-``, ``~`` ...), each with some text and lists of entries (a bullet line and what is indented
under it), and sections nested by heading level. The tree built here has the shapes the merge expects:
``document``/``section`` (heading, ``body``, ``sections``), ``body`` (``list`` and ``paragraph`` blocks),
``list`` (``entry``). Entries are grouped by the prefix people give them ("Fix:", "**Docs**:", "[core]").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from merges.engine.resolvers.structured.model import Container, Node, Profile, TextNode, squash, text

BULLET = re.compile(rb"([ \t]*)([-*+\xe2\x80\xa2]|\d+[.)]|#\.)[ \t]+\S")
UNDERLINE = re.compile(rb"([=\-~^\"'`#*+<>:_.])\1{2,}[ \t]*")
ATX = re.compile(rb"(#{1,6})[ \t]+\S")
FENCE = re.compile(rb"[ \t]*(```|~~~)")
CATEGORY = re.compile(r"(?:\*\*|__|`)?([A-Za-z][\w-]{0,15}(?: [\w-]{1,15})?)(?:\*\*|__|`)?(?:\([^)]*\))?:\s")
BRACKET = re.compile(r"\[([^\]]{1,24})\]\s")


@dataclass
class _Line:
    start: int
    end: int  # without the newline
    data: bytes
    fenced: bool

    @property
    def blank(self) -> bool:
        return not self.data.strip()

    @property
    def indent(self) -> int:
        return len(self.data) - len(self.data.lstrip())


def _lines(src: bytes) -> list[_Line]:
    lines, offset, fenced = [], 0, False
    for raw in src.splitlines(keepends=True):
        data = raw.rstrip(b"\r\n")
        fence = FENCE.match(data) is not None
        lines.append(_Line(offset, offset + len(data), data, fenced or fence))
        fenced = fenced != fence
        offset += len(raw)
    return lines


def _headings(lines: list[_Line]) -> list[tuple[int, int, int]]:
    """(first line, line after, level) of every heading; underline styles take levels in order of appearance."""
    styles: list[tuple[bytes, bool]] = []
    found = []
    i = 0
    while i < len(lines):
        line = lines[i]
        atx = None if line.fenced else ATX.match(line.data)
        if atx:
            found.append((i, i + 1, len(atx.group(1))))
        elif (
            not line.fenced
            and not line.blank
            and line.indent == 0
            and BULLET.match(line.data) is None
            and i + 1 < len(lines)
            and UNDERLINE.fullmatch(lines[i + 1].data)
            and not UNDERLINE.fullmatch(line.data)
        ):
            over = i > 0 and lines[i - 1].data == lines[i + 1].data
            style = (lines[i + 1].data[:1], over)
            if style not in styles:
                styles.append(style)
            found.append((i - 1 if over else i, i + 2, 6 + styles.index(style) + 1))
            i += 1
        i += 1
    return found


def parse_changelog(src: bytes) -> Node:
    lines = _lines(src)
    headings = _headings(lines)
    root = TextNode("document", 0, len(src))
    stack: list[tuple[TextNode, int]] = [(root, 0)]
    spans: list[tuple[TextNode, int]] = []  # every section and the line its body starts at
    starts = [lines[h[0]].start for h in headings] + [len(src)]
    for n, (first, after, level) in enumerate(headings):
        while stack[-1][1] >= level:
            stack.pop()
        end = next((starts[m] for m in range(n + 1, len(headings)) if headings[m][2] <= level), len(src))
        section = TextNode("section", lines[first].start, end)
        section.add(TextNode("heading", lines[first].start, lines[after - 1].end))
        stack[-1][0].children.append(section)
        section.parent = stack[-1][0]
        stack.append((section, level))
        spans.append((section, after))
    for node, body_line in [(root, 0), *spans]:
        subsections = list(node.children[1 if node.type == "section" else 0 :])
        del node.children[1 if node.type == "section" else 0 :]
        body_end = subsections[0].start_byte if subsections else node.end_byte
        body_start = lines[body_line].start if body_line < len(lines) else len(src)
        body = node.add(TextNode("body", min(body_start, body_end), body_end))
        _blocks(body, [line for line in lines[body_line:] if line.start < body_end])
        container = node.add(TextNode("sections", body_end, node.end_byte))
        for subsection in subsections:
            container.add(subsection)
    return root


def _blocks(body: TextNode, lines: list[_Line]) -> None:
    """Lists of entries and paragraphs between one heading and the next."""
    i = 0
    while i < len(lines):
        line = lines[i]
        bullet = None if line.fenced else BULLET.match(line.data)
        if line.blank:
            i += 1
        elif bullet:
            block = body.add(TextNode("list", line.start, line.end))
            while True:
                j = _entry_end(lines, i, line.indent)
                block.add(TextNode("entry", lines[i].start, lines[j - 1].end))
                block.end_byte = lines[j - 1].end
                k = next((k for k in range(j, len(lines)) if not lines[k].blank), len(lines))
                following = BULLET.match(lines[k].data) if k < len(lines) and not lines[k].fenced else None
                if not following or lines[k].indent != line.indent or following.group(2)[:1] != bullet.group(2)[:1]:
                    i = j
                    break
                i = k
        else:
            j = i + 1
            while j < len(lines) and not lines[j].blank and not (BULLET.match(lines[j].data) and not lines[j].fenced):
                j += 1
            body.add(TextNode("paragraph", line.start, lines[j - 1].end))
            i = j


def _entry_end(lines: list[_Line], i: int, indent: int) -> int:
    """The line after the entry starting at ``i``: indented lines (after blank lines too) and lines that
    run on without a blank line belong to it."""
    j = i + 1
    while j < len(lines):
        line = lines[j]
        if line.blank:
            k = next((k for k in range(j, len(lines)) if not lines[k].blank), len(lines))
            if k < len(lines) and lines[k].indent > indent:
                j = k
                continue
            break
        if not line.fenced and BULLET.match(line.data) and line.indent <= indent:
            break
        j += 1
    return j


def _entry_text(node: Node, src: bytes) -> str:
    words = squash(text(node, src))
    match = BULLET.match(text(node, src).lstrip())
    return words[len(match.group(2)) :].strip() if match else words


def changelog_signature(node: Node, src: bytes) -> str | None:
    if node.type == "entry":
        return f"entry {_entry_text(node, src)}"
    if node.type == "section":
        return f"section {squash(text(node.children[0], src).splitlines()[0])}" if node.children else None
    return None


def changelog_category(node: Node, src: bytes) -> str | None:
    if node.type != "entry":
        return None
    entry = _entry_text(node, src)
    match = CATEGORY.match(entry) or BRACKET.match(entry)
    return match.group(1).casefold() if match else ""


def changelog_container(node: Node, src: bytes) -> Container | None:
    if node.type == "list":
        return Container("changelog entries", members=frozenset({"entry"}))
    if node.type == "sections":
        return Container("changelog sections", members=frozenset({"section"}))
    return None


CHANGELOG = Profile(
    name="changelog",
    parse=parse_changelog,
    container=changelog_container,
    signature=changelog_signature,
    comments=frozenset(),
    family=lambda node, src: "entry" if node.type == "entry" else node.type,
    category=changelog_category,
    sort_keys=lambda node, src, name: ((name.casefold(),),),
    newest_first=True,
)
