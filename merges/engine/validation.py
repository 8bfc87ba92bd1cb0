"""Checks every resolution that no person made: no markers left, and the file still parses.

Only what can be checked without running the project's code: Python compiles, JSON/TOML/YAML parse.
The ticket's own verify command runs later, on the fully merged tree (see ``run_verify_command``).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MARKER = re.compile(r"^(<<<<<<<|\|\|\|\|\|\|\||=======|>>>>>>>)( |$)", re.MULTILINE)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}


def validate_text(path: str, text: str) -> Verdict:
    if _has_markers(text):
        return Verdict(False, f"conflict markers left in {path}")
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".py":
            compile(text, path, "exec", dont_inherit=True)
        elif suffix == ".json":
            json.loads(text)
        elif suffix == ".toml":
            tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            list(yaml.safe_load_all(text))
    except (SyntaxError, ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Verdict(False, f"{path} does not parse: {first}")
    return Verdict(True)


def _has_markers(text: str) -> bool:
    """A full marker block (start, separator, end), not a lone "=======" a file may hold on purpose."""
    kinds = {m.group(1) for m in MARKER.finditer(text)}
    return "<<<<<<<" in kinds or ">>>>>>>" in kinds
