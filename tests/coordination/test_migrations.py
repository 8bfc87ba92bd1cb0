"""Migrations that move data keep it: run forwards and back on rows written by the schema before them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE, AFTER = ("coordination", "0004_event_counted_kind"), ("coordination", "0005_ticket_spec_apart")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    return executor.loader.project_state([target]).apps


def test_each_tickets_submitted_spec_moves_to_its_own_row_and_back():
    old = _migrate(BEFORE)
    repository = old.get_model("coordination", "Repository").objects.create(name="r", url_or_path="/r")
    Ticket = old.get_model("coordination", "Ticket")
    specs = {Ticket.objects.create(repository=repository, title=f"t{i}", spec={"title": f"t{i}", "tasks": [i]},
                                   base_branch="main", base_sha="0" * 40, head_sha="0" * 40).pk: i
             for i in range(3)}
    try:
        new = _migrate(AFTER)
        moved = dict(new.get_model("coordination", "SubmittedSpec").objects.values_list("ticket_id", "spec"))
        assert moved == {pk: {"title": f"t{i}", "tasks": [i]} for pk, i in specs.items()}
        back = _migrate(BEFORE)
        restored = dict(back.get_model("coordination", "Ticket").objects.values_list("pk", "spec"))
        assert restored == moved
    finally:
        _migrate(_latest())


def _latest():
    executor = MigrationExecutor(connection)
    return next(node for node in executor.loader.graph.leaf_nodes() if node[0] == "coordination")
