"""Which profile reads a file, by its name."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from merges.engine.resolvers.structured.changelog import CHANGELOG
from merges.engine.resolvers.structured.code import GO, JAVASCRIPT, PYTHON, RUST, TSX, TYPESCRIPT
from merges.engine.resolvers.structured.markup import CSS, HTML, JSON, MARKDOWN, TOML, YAML
from merges.engine.resolvers.structured.model import Profile

CHANGELOG_NAME = re.compile(r"(changes|changelog|history|news|release[-_]?notes)(\.(md|markdown|rst|txt))?$", re.I)
BY_SUFFIX = {
    ".py": PYTHON,
    ".pyi": PYTHON,
    ".js": JAVASCRIPT,
    ".mjs": JAVASCRIPT,
    ".cjs": JAVASCRIPT,
    ".jsx": JAVASCRIPT,
    ".ts": TYPESCRIPT,
    ".mts": TYPESCRIPT,
    ".cts": TYPESCRIPT,
    ".tsx": TSX,
    ".json": JSON,
    ".yaml": YAML,
    ".yml": YAML,
    ".toml": TOML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".css": CSS,
    ".go": GO,
    ".rs": RUST,
}


def profile_for(path: str) -> Profile | None:
    """The profile for a path; changelogs by their name whatever their markup. None: no structure known."""
    name = PurePosixPath(path).name
    if CHANGELOG_NAME.match(name):
        return CHANGELOG
    return BY_SUFFIX.get(PurePosixPath(name).suffix.lower())
