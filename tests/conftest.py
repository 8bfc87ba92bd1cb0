from __future__ import annotations

import pytest
from django.core.cache import cache

from coordination.domain import dispatch
from coordination.jobs.dispatchers import ThreadDispatcher
from tests.scenarios import RecordingDispatcher

DATABASE_FIXTURES = frozenset({"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback",
                               "live_server"})


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark every test that reaches the database: only those can behave differently on PostgreSQL + Redis
    (pytest-django refuses the database to the others; the ones that start dagmerge in a subprocess strip
    DATABASE_URL and REDIS_URL), so CI's servers pass runs ``-m database`` and not the whole suite twice."""
    if item.get_closest_marker("django_db") or DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.database)


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
