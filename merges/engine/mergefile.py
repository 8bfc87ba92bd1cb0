"""Three versions of one file merged by git, then offered to the resolvers: ``merge-file`` and the driver.

git does the merge (``git merge-file --diff3``, the same line merge a ``git merge`` would do); the
resolvers only see the hunks git could not settle. Binary files keep ours, as git's own binary driver
does, and files that are not UTF-8 get git's text merge with no resolver: text tools decide neither.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from merges.engine.conflicts import MARKER_SIZE, safe_marker_size
from merges.engine.git import Git
from merges.engine.resolvers.context import Sides
from merges.engine.resolvers.ladder import HISTORY_SAFE, FileResolution, resolve_merged
from merges.engine.resolvers.recorded import ResolutionStore

LABELS = ("ours", "base", "theirs")
BINARY_SNIFF = 8000  # git calls a file binary when a NUL shows in its first 8000 bytes


@dataclass
class MergedFile:
    data: bytes
    clean: bool  # no conflict left: ``data`` has no markers
    resolution: FileResolution | None = None  # what the resolvers did, when git left text hunks
    reason: str = ""  # why no resolver was tried, when none was

    @property
    def summary(self) -> str:
        if self.resolution is None:
            return "merged cleanly by git" if self.clean else self.reason
        outcomes = self.resolution.outcomes
        names = sorted({o.resolver for o in outcomes if o.resolver})
        why = sorted({o.provenance for o in outcomes if o.provenance})  # the structured tier's reasons
        left = len(outcomes) - self.resolution.resolved_hunks
        return (f"{len(outcomes)} conflict hunks, {self.resolution.resolved_hunks} resolved"
                + (f" ({'; '.join([', '.join(names), *why])})" if names else "")
                + (f", {left} left with markers" if left else ""))


def is_binary(data: bytes) -> bool:
    return b"\0" in data[:BINARY_SNIFF]


def git_merge_file(base: bytes, ours: bytes, theirs: bytes, marker_size: int = MARKER_SIZE,
                   labels: tuple[str, str, str] = LABELS) -> tuple[bytes, int]:
    """git's diff3-style merge of three texts: (merged bytes, conflict count)."""
    with tempfile.TemporaryDirectory(prefix="dagmerge-merge-file-") as tmp:
        paths = []
        for name, data in zip(("ours", "base", "theirs"), (ours, base, theirs), strict=True):
            paths.append(Path(tmp) / name)
            paths[-1].write_bytes(data)
        proc = Git(tmp).run("merge-file", "-p", "--diff3", f"--marker-size={marker_size}",
                            "-L", labels[0], "-L", labels[1], "-L", labels[2], *map(str, paths),
                            ok=range(0, 128))
    return proc.stdout, proc.returncode


def merge_bytes(base: bytes, ours: bytes, theirs: bytes, path: str, rule_set: str = HISTORY_SAFE,
                store: ResolutionStore | None = None, marker_size: int = MARKER_SIZE,
                labels: tuple[str, str, str] = LABELS) -> MergedFile:
    """Merge three versions of ``path``; conflicts git leaves go to the ``rule_set`` resolvers.

    Hunks no resolver settles keep standard conflict markers of ``marker_size``.
    """
    if any(map(is_binary, (base, ours, theirs))):
        return MergedFile(ours, clean=False, reason="binary file: ours kept, a person decides")
    texts = [_utf8(data) for data in (base, ours, theirs)]
    internal_size = safe_marker_size(texts, marker_size) if None not in texts else marker_size
    merged, conflicts = git_merge_file(base, ours, theirs, internal_size, labels)
    if conflicts == 0:
        return MergedFile(merged, clean=True)
    if None in texts:
        return MergedFile(merged, clean=False, reason="not UTF-8: git's markers left for a person")
    resolution = resolve_merged(merged.decode(), path, Sides(*texts), rule_set, store, internal_size)
    return MergedFile(resolution.render(marker_size).encode(), clean=resolution.settled, resolution=resolution)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
