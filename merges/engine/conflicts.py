"""What a conflicted merge left: each path's kind, its three sides and its hunks.

Binary and non-UTF-8 files carry no text: no text tool may "resolve" them, a person decides.
Hunks are read back from git's diff3-style markers; a side containing a line that looks like a marker
of the same size makes that reading ambiguous, which ``marker_collision`` tells (and
``safe_marker_size`` avoids when dagmerge runs the merge itself).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from merges.engine.git import Git, MergeTreeResult, StageEntry

MAX_TEXT_BYTES = 2 * 1024 * 1024


MARKER_SIZE = 7
TEXT_KINDS = ("content", "add/add")  # kinds whose merged text carries hunks


@dataclass
class Hunk:
    start: int  # 1-based line of the "<<<<<<<" marker in git's merged text
    ours: list[str]
    base: list[str]
    theirs: list[str]
    end: int = 0  # 1-based line of the ">>>>>>>" marker
    has_base: bool = False  # diff3 style: the "|||||||" section was there, so ``base`` is known

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "ours": self.ours, "base": self.base,
                "theirs": self.theirs}


@dataclass
class ConflictDetail:
    path: str
    kind: str
    base_oid: str = ""
    ours_oid: str = ""
    theirs_oid: str = ""
    base_text: str | None = None
    ours_text: str | None = None
    theirs_text: str | None = None
    merged_text: str | None = None
    hunks: list[Hunk] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    mode: str = "100644"  # what a resolved file is written with: our side's mode, else theirs

    @property
    def hunk_count(self) -> int:
        return len(self.hunks) or 1


def describe_conflicts(git: Git, result: MergeTreeResult) -> list[ConflictDetail]:
    entries = result.conflicts
    oids = [(e.stages.get(1), e.stages.get(2), e.stages.get(3)) for e in entries]
    specs = [s.oid for triple in oids for s in triple if s] + [f"{result.tree}:{e.path}" for e in entries]
    blobs = dict(zip(specs, git.read_blobs(specs), strict=True))
    details = []
    for entry, (base, ours, theirs) in zip(entries, oids, strict=True):
        sides = [blobs.get(s.oid) if s else None for s in (base, ours, theirs)]
        merged = blobs.get(f"{result.tree}:{entry.path}")
        texts = [_text(b) for b in (*sides, merged)]
        binary = any(b is not None and t is None for b, t in zip((*sides, merged), texts, strict=True))
        detail = ConflictDetail(
            path=entry.path,
            kind="binary" if binary else _kind(entry.types, base, ours, theirs),
            base_oid=base.oid if base else "",
            ours_oid=ours.oid if ours else "",
            theirs_oid=theirs.oid if theirs else "",
            mode=next((s.mode for s in (ours, theirs, base) if s), "100644"),  # no stage: git named it only
            base_text=texts[0], ours_text=texts[1], theirs_text=texts[2], merged_text=texts[3],
            messages=entry.messages,
        )
        if detail.kind in TEXT_KINDS and detail.merged_text is not None:
            detail.hunks = parse_hunks(detail.merged_text)
        details.append(detail)
    return details


def _text(blob: bytes | None) -> str | None:
    if blob is None or len(blob) > MAX_TEXT_BYTES or b"\0" in blob:
        return None
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _kind(types: list[str], base: StageEntry | None, ours: StageEntry | None, theirs: StageEntry | None) -> str:
    joined = " ".join(types).lower()
    if "rename" in joined:
        return "rename"
    if "modify/delete" in joined or (base and (ours is None or theirs is None)):
        return "modify/delete"
    if "add/add" in joined or (base is None and ours and theirs):
        return "add/add"
    if "binary" in joined:
        return "binary"
    if "contents" in joined or "content" in joined:
        return "content"
    if ours and theirs and ours.mode != theirs.mode:
        return "mode"
    return "other"


def parse_hunks(merged: str, marker_size: int = MARKER_SIZE) -> list[Hunk]:
    """Hunks of a conflicted text in git's marker style (``<<<<<<<``, ``|||||||``, ``=======``, ``>>>>>>>``).

    Lines may end in CR (git writes CRLF markers into CRLF files); the hunk lines keep theirs.
    """
    hunks: list[Hunk] = []
    section: str | None = None
    current: Hunk | None = None
    for number, line in enumerate(merged.split("\n"), start=1):
        marker = _marker(line, marker_size)
        if marker == "<" and section is None:
            current, section = Hunk(number, [], [], []), "ours"
        elif current is not None and marker == "|" and section == "ours":
            section, current.has_base = "base", True
        elif current is not None and marker == "=" and section in ("ours", "base"):
            section = "theirs"
        elif current is not None and marker == ">" and section == "theirs":
            current.end = number
            hunks.append(current)
            current, section = None, None
        elif current is not None and section is not None:
            getattr(current, section).append(line)
    return hunks


def _marker(line: str, size: int) -> str | None:
    """Which conflict marker ``line`` is at this marker size, the way git recognises them."""
    line = line.removesuffix("\r")
    head, rest = line[:size], line[size:]
    if len(head) < size or len(set(head)) != 1 or head[0] not in "<|=>":
        return None
    if head[0] == "=":
        return "=" if not rest else None
    return head[0] if not rest or rest[0] == " " else None


def marker_collision(texts: Iterable[str | None], size: int = MARKER_SIZE) -> bool:
    """Whether a line of these texts would read as a conflict marker of ``size``."""
    return any(_marker(line, size) for text in texts if text for line in text.split("\n"))


def safe_marker_size(texts: Sequence[str | None], at_least: int = MARKER_SIZE) -> int:
    """The smallest marker size from ``at_least`` up that no line of ``texts`` can be mistaken for."""
    size = at_least
    while marker_collision(texts, size):
        size += 1
    return size
