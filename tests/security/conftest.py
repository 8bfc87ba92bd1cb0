"""Shared pieces of the security catalogue (docs/security.md): spies, canaries, a home outside /tmp."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.coordination.conftest import alice_client, bob_client, fresh_channel_layer  # noqa: F401 - fixtures

# Values the worker holds that no task, page, log, event or row may ever show.
CANARIES = {
    "ANTHROPIC_API_KEY": "sk-ant-canary-3f9c2e",
    "DATABASE_URL": "postgres://dagmerge:pw-canary-81d4@db.internal:5432/dagmerge",
    "DAGMERGE_SECRET_KEY": "secret-key-canary-5a7b",
    "DAYTONA_API_KEY": "daytona-canary-c0ffee",
    "GITHUB_TOKEN": "ghp_canary0d15ea5e",
    "AWS_SECRET_ACCESS_KEY": "aws-canary-b16b00b5",
}


@dataclass
class Spy:
    """A program on the host that records every run of itself: a marker file that appears only if something
    ran it. Tasks plant it in their repository config; under bubblewrap /tmp is private, so only dagmerge's
    own git (on the host) could run it and create the marker."""

    program: Path
    marker: Path

    def command(self, label: str) -> str:
        return f"{self.program} {label}"

    def runs(self) -> list[str]:
        return self.marker.read_text().splitlines() if self.marker.exists() else []


@pytest.fixture
def spy(tmp_path: Path) -> Spy:
    program, marker = tmp_path / "spy", tmp_path / "spy-ran"
    program.write_text(f'#!/bin/sh\necho "$*" >> {marker}\ncat 2>/dev/null || true\n')
    program.chmod(0o755)
    return Spy(program, marker)


@pytest.fixture
def canaries(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The worker's secrets, in this (the worker's) process environment."""
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    return CANARIES


@pytest.fixture
def exposed_home(settings) -> Iterator[Path]:
    """DAGMERGE_HOME (secret key, database, workspace) outside /tmp, as operators have it: the sandbox's
    private /tmp would otherwise hide it by itself, and the hiding under test would never be exercised."""
    outside_tmp = Path(tempfile.mkdtemp(prefix="dagmerge-security-", dir="/var/tmp"))
    home = outside_tmp / "home"
    (home / "secrets").mkdir(parents=True)
    for where in (home / "secret_key", home / "secrets" / "secret_key"):
        where.write_text(CANARIES["DAGMERGE_SECRET_KEY"])
    (home / "dagmerge.sqlite3").write_text(f"SQLite format 3 {CANARIES['DATABASE_URL']}")
    settings.DAGMERGE_HOME, settings.DAGMERGE_SECRETS_DIR = home, home / "secrets"
    settings.DAGMERGE_WORKSPACE = home / "workspace"
    try:
        yield home
    finally:
        shutil.rmtree(outside_tmp, ignore_errors=True)
