from __future__ import annotations

import pytest

from coordination import dispatch


@pytest.fixture(autouse=True)
def isolated_workspace(settings, tmp_path):
    """Every test gets its own workspace (clones, worktrees) and a fresh dispatcher."""
    settings.DAGMERGE_WORKSPACE = tmp_path / "workspace"
    dispatch.use(None)
    yield settings.DAGMERGE_WORKSPACE
    current = dispatch._dispatcher
    if isinstance(current, dispatch.ThreadDispatcher):
        current.shutdown()
    dispatch.use(None)
