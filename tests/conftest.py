from __future__ import annotations

import pytest
from django.core.cache import cache

from coordination.domain import dispatch
from coordination.jobs.dispatchers import ThreadDispatcher
from tests.scenarios import RecordingDispatcher


@pytest.fixture(autouse=True)
def isolated_workspace(settings, tmp_path):
    """Every test gets its own workspace (clones, worktrees), and jobs go nowhere unless the test picks
    a dispatcher: no test leaves messages in a real broker."""
    settings.DAGMERGE_WORKSPACE = tmp_path / "workspace"
    dispatch.use(RecordingDispatcher())
    cache.clear()  # a page drawn for another test's ticket of the same id and version (ids repeat)
    yield settings.DAGMERGE_WORKSPACE
    current = dispatch._dispatcher
    if isinstance(current, ThreadDispatcher):
        current.shutdown()
    dispatch.use(None)
