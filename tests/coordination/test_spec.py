from __future__ import annotations

import pytest

from coordination.domain.spec import SpecError, check_dag, parse_spec, validate_spec


def _spec(**overrides):
    spec = {
        "title": "Add login",
        "repository": "/tmp/repo",
        "base_branch": "main",
        "tasks": [
            {"key": "A", "title": "Set up", "command": "true"},
            {"key": "B", "title": "B", "depends_on": ["A"], "command": "true"},
        ],
    }
    spec.update(overrides)
    return spec


def test_yaml_spec_in_the_documented_shape_is_accepted():
    spec = parse_spec("""
title: Add login
repository: ./repo
base_branch: main
conflict_threshold: 4
tasks:
  - key: A
    title: Set up
    command: "sh -c 'echo hi > a.txt'"
    owned_files: ["a.txt"]
  - {key: B, title: Feature X, depends_on: [A], command: "true"}
""")
    assert [t.key for t in spec.tasks] == ["A", "B"]
    assert spec.tasks[1].depends_on == ["A"]
    assert spec.conflict_threshold == 4 and spec.review_policy == "threshold"


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([{"key": "A", "command": "true", "depends_on": ["C"]}, {"key": "B", "command": "true", "depends_on": ["A"]},
          {"key": "C", "command": "true", "depends_on": ["B"]}], "dependency cycle: A -> C -> B -> A"),
        ([{"key": "A", "command": "true", "depends_on": ["nope"]}], "task A depends on unknown task 'nope'"),
        ([{"key": "A", "command": "true"}, {"key": "A", "command": "true"}], "duplicate task key 'A'"),
        ([{"key": "A", "command": "true", "depends_on": ["A"]}], "task A depends on itself"),
        ([{"key": "bad key", "command": "true"}], "tasks[0]: key 'bad key' must be"),
        ([{"key": "A"}], "task A: a shell task needs a 'command'"),
        ([{"key": "A", "command": "true", "colour": "red"}], "task A: unknown key(s): colour"),
        ([{"key": "A", "command": "true", "owned_files": "a.txt"}], "owned_files must be a list"),
    ],
)
def test_bad_task_lists_are_refused_with_one_line_naming_the_culprit(tasks, message):
    with pytest.raises(SpecError) as error:
        validate_spec(_spec(tasks=tasks))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_bad_ticket_fields_are_refused():
    with pytest.raises(SpecError, match="review_policy 'sometimes'"):
        validate_spec(_spec(review_policy="sometimes"))
    with pytest.raises(SpecError, match="conflict_threshold must be a whole number"):
        validate_spec(_spec(conflict_threshold=-1))
    with pytest.raises(SpecError, match="missing 'tasks'"):
        validate_spec({"title": "x", "repository": "r"})
    with pytest.raises(SpecError, match="not valid YAML/JSON"):
        parse_spec("title: [unclosed")


def test_topological_order_puts_parents_first():
    order = check_dag({"D": ["B", "C"], "B": ["A"], "C": ["A"], "A": []})
    assert order.index("A") < order.index("B") < order.index("D")
    assert order.index("C") < order.index("D")
