"""Optional dependencies: loaded when the feature that needs them is used, never at import time.

``pip install dagmerge`` gives the dashboard, the workers and the CLI; the Claude agent (conflict tier and
``claude`` executor) and Daytona sandboxes need the ``agents`` extra. Used without it, a feature fails
with one line that says what to install, not with a ``ModuleNotFoundError`` from deep inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

AGENT_SDK = "claude_agent_sdk"
DAYTONA_SDK = "daytona"


class MissingExtra(ImportError):
    """A feature was used without the optional package it needs; the message says what to install."""


def install_hint(extra: str = "agents") -> str:
    return f"pip install 'dagmerge[{extra}]'"


def missing_extra_message(feature: str, extra: str = "agents") -> str:
    return f"{feature} needs the {extra} extra: {install_hint(extra)}"


def load(module: str, feature: str, extra: str = "agents") -> ModuleType:
    """Import ``module`` for ``feature``; raise MissingExtra naming the extra when it is not installed."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # A dependency of the SDK missing (a half-installed extra) gets the same advice, with its name.
        detail = "" if exc.name == module else f" ({exc})"
        raise MissingExtra(missing_extra_message(feature, extra) + detail, name=module) from None

