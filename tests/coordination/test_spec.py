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


YAML = """\
title: Lines
repository: ./repo
tasks:
  - key: A
    command: "true"
  - key: B
    depends_on: [A, Z]
    command: "true"
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (YAML, "spec.yaml, line 7: task B depends on unknown task 'Z'"),
        (YAML.replace("[A, Z]", "[A]").replace('    command: "true"\n', "    colour: red\n    command: x\n", 1),
         "spec.yaml, line 5: task A: unknown key(s): colour"),
        (YAML.replace("key: B", "key: A"), "spec.yaml, line 6: duplicate task key 'A'"),
        (YAML.replace("[A, Z]", "[B]").replace("key: A", "key: C"), "spec.yaml, line 7: task B depends on itself"),
        ("title: x\nrepository: r\nconflict_threshold: many\ntasks: [{key: A, command: 'true'}]\n",
         "spec.yaml, line 3: conflict_threshold must be a whole number ≥ 0, not 'many'"),
        ("title: x\nrepository: r\ntasks:\n  - {key: A}\n",
         "spec.yaml, line 4: task A: a shell task needs a 'command'"),
        ("title: x\nrepository: r\ntasks: [\n", "spec.yaml, line 4 is not valid YAML/JSON"),
    ],
)
def test_yaml_spec_errors_name_the_line(text, message):
    with pytest.raises(SpecError) as error:
        parse_spec(text, source="spec.yaml")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_json_spec_errors_stay_without_a_line():
    text = '{"title": "x", "repository": "r", "tasks": [{"key": "A", "command": "true", "depends_on": ["Q"]}]}'
    with pytest.raises(SpecError, match=r"^task A depends on unknown task 'Q'$"):
        parse_spec(text, source="spec.json")


def test_a_command_that_cannot_be_split_is_refused_before_anything_runs():
    with pytest.raises(SpecError, match=r"task A: command cannot be split into words: No closing quotation"):
        validate_spec(_spec(tasks=[{"key": "A", "command": "sh -c 'echo hi"}]))
    with pytest.raises(SpecError, match="task A: a shell task needs a 'command'"):
        validate_spec(_spec(tasks=[{"key": "A", "command": "   "}]))
    with pytest.raises(SpecError, match="verify_command cannot be split into words"):
        validate_spec(_spec(verify_command='pytest -k "unclosed'))
    # A Claude task's command is not run: only its instructions matter.
    assert validate_spec(_spec(tasks=[{"key": "A", "executor": "claude", "instructions": "do it",
                                       "command": "'"}])).tasks[0].executor == "claude"


def test_an_empty_task_list_says_there_are_no_tasks():
    with pytest.raises(SpecError, match=r"^spec has no tasks: list at least one under 'tasks'$"):
        validate_spec(_spec(tasks=[]))
    with pytest.raises(SpecError, match="missing 'tasks'"):
        validate_spec({"title": "x", "repository": "r", "tasks": None})
