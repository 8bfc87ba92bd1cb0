"""Ticket specs (YAML or JSON): parsed and checked before anything is written.

Each error is one line that names the culprit, so a script or a person can fix the spec at once; in a YAML
file it also names the line (each error knows where in the spec it is, ``SpecError.at``, and
``parse_spec`` finds that place in the YAML's nodes).
"""

from __future__ import annotations

import json
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from coordination.domain.ownership import BadPattern, validate_pattern

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
REVIEW_POLICIES = ("threshold", "always", "never")
EXECUTORS = ("shell", "claude")
TICKET_KEYS = {"title", "repository", "base_branch", "conflict_threshold", "review_policy", "verify_command",
               "llm_max_invocations", "llm_max_usd", "serialize_overlaps", "sandbox", "network", "tasks"}
SANDBOXES = ("local", "daytona")
TASK_KEYS = {"key", "title", "command", "instructions", "executor", "depends_on", "owned_files",
             "timeout_seconds", "join_strategy", "network", "max_attempts"}
MAX_SPEC_BYTES = 16 << 20  # a 5,000-task spec is about half a megabyte
JOIN_STRATEGY = re.compile(r"^(all|success_only|quorum:[1-9][0-9]*)$")


class SpecError(ValueError):
    """A spec that cannot be accepted; the message is one line naming what is wrong.

    ``at`` is where: a path of mapping keys and list indexes from the top of the spec (``("tasks", 2,
    "command")``); a task can also be named by its key instead of its index (``("tasks", "B")``)."""

    def __init__(self, message: str, at: tuple[str | int, ...] = ()):
        super().__init__(message)
        self.at = at


@dataclass
class TaskSpec:
    key: str
    title: str
    command: str = ""
    instructions: str = ""
    executor: str = "shell"
    depends_on: list[str] = field(default_factory=list)
    owned_files: list[str] = field(default_factory=list)
    timeout_seconds: int | None = None
    join_strategy: str = "all"
    network: bool = False  # its commands may use the network (off by default, under bubblewrap)
    max_attempts: int = 3  # runs allowed before a task whose worker keeps dying fails


@dataclass
class TicketSpec:
    title: str
    repository: str
    base_branch: str
    tasks: list[TaskSpec]
    conflict_threshold: int = 10
    review_policy: str = "threshold"
    verify_command: str = ""
    llm_max_invocations: int = 20
    llm_max_usd: float = 5.0
    serialize_overlaps: bool = False
    sandbox: str = ""
    network: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


def load_spec_file(path: str | Path) -> TicketSpec:
    """Read a spec file; a relative ``repository`` is taken relative to the spec's folder.

    Only a regular file of at most ``MAX_SPEC_BYTES`` is read: a FIFO would block and /dev/zero never end.
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise SpecError(f"spec {path} is not a regular file")
        with path.open("rb") as stream:
            data = stream.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from exc
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"spec {path} is larger than {MAX_SPEC_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {path} is not UTF-8 (byte {exc.start})") from None
    spec = parse_spec(text, source=str(path))
    repo = Path(spec.repository).expanduser()
    if not repo.is_absolute() and "://" not in spec.repository:
        spec.repository = str((path.parent / repo).resolve())
    return spec


def parse_spec(text: str, source: str = "spec") -> TicketSpec:
    """A spec from its text; a YAML spec's errors say on which line (``spec.yaml, line 7: ...``)."""
    is_json = text.lstrip().startswith("{")
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise SpecError(f"{where} is not valid YAML/JSON: {problem}") from exc
    try:
        return validate_spec(data)
    except SpecError as exc:
        line = None if is_json else yaml_line(text, exc.at)
        if line is None:
            raise
        raise SpecError(f"{source}, line {line}: {exc}", exc.at) from None


def yaml_line(text: str, at: tuple[str | int, ...]) -> int | None:
    """The line (1-based) of the deepest node of ``at`` the YAML text has: a missing field's error points
    at the mapping that lacks it."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for step in at:
        child = _child(node, step)
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _child(node: yaml.Node | None, step: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((value for key, value in node.value if key.value == step), None)
    if isinstance(node, yaml.SequenceNode):
        if isinstance(step, int):
            return node.value[step] if 0 <= step < len(node.value) else None
        for item in node.value:
            key = _child(item, "key")
            if isinstance(key, yaml.ScalarNode) and key.value == step:
                return item
    return None


def validate_spec(data: Any) -> TicketSpec:
    if not isinstance(data, dict):
        raise SpecError("spec must be a mapping with title, repository, base_branch and tasks")
    unknown = sorted(set(data) - TICKET_KEYS)
    if unknown:
        raise SpecError(f"unknown spec key(s): {', '.join(unknown)}", (unknown[0],))
    for required in ("title", "repository"):
        if not data.get(required):
            raise SpecError(f"spec is missing '{required}'", (required,))
    if "tasks" not in data or data["tasks"] is None:
        raise SpecError("spec is missing 'tasks'")
    if not isinstance(data["tasks"], list):
        raise SpecError("'tasks' must be a list", ("tasks",))
    if not data["tasks"]:
        raise SpecError("spec has no tasks: list at least one under 'tasks'", ("tasks",))
    review_policy = data.get("review_policy", "threshold")
    if review_policy not in REVIEW_POLICIES:
        raise SpecError(f"review_policy '{review_policy}' is not one of {', '.join(REVIEW_POLICIES)}",
                        ("review_policy",))
    sandbox = data.get("sandbox", "")
    if sandbox and sandbox not in SANDBOXES:
        raise SpecError(f"sandbox '{sandbox}' is not one of {', '.join(SANDBOXES)}", ("sandbox",))
    tasks = [parse_task(raw, f"tasks[{index}]", index) for index, raw in enumerate(data["tasks"])]
    check_unique_keys([t.key for t in tasks])
    check_dag({t.key: t.depends_on for t in tasks})
    verify_command = _string(data.get("verify_command", ""), "verify_command", allow_empty=True)
    _check_command(verify_command, "verify_command", ("verify_command",))
    return TicketSpec(
        title=_string(data["title"], "title"),
        repository=_string(data["repository"], "repository"),
        base_branch=_string(data.get("base_branch") or "main", "base_branch"),
        tasks=tasks,
        conflict_threshold=_non_negative_int(data.get("conflict_threshold", 10), "conflict_threshold"),
        review_policy=review_policy,
        verify_command=verify_command,
        llm_max_invocations=_non_negative_int(data.get("llm_max_invocations", 20), "llm_max_invocations"),
        llm_max_usd=_non_negative_number(data.get("llm_max_usd", 5.0), "llm_max_usd"),
        serialize_overlaps=_bool(data.get("serialize_overlaps", False), "serialize_overlaps"),
        sandbox=sandbox,
        network=_bool(data.get("network", False), "network"),
        raw=data,
    )


def parse_task(raw: Any, where: str = "task", index: int | None = None) -> TaskSpec:
    """One task of a spec (``index``: its place in the spec's list, for the errors' line numbers)."""
    at: tuple[str | int, ...] = ("tasks", index) if index is not None else ()
    if not isinstance(raw, dict):
        raise SpecError(f"{where} must be a mapping", at)
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key) or ".." in key or key.endswith((".", ".lock")):
        raise SpecError(f"{where}: key {key!r} must be 1-100 letters, digits, '.', '_' or '-' (a git branch part)",
                        (*at, "key"))
    where = f"task {key}"
    unknown = sorted(set(raw) - TASK_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s): {', '.join(unknown)}", (*at, unknown[0]))
    executor = raw.get("executor", "shell")
    if executor not in EXECUTORS:
        raise SpecError(f"{where}: executor '{executor}' is not one of {', '.join(EXECUTORS)}", (*at, "executor"))
    command = _string(raw.get("command", ""), f"{where}: command", allow_empty=True, at=(*at, "command"))
    instructions = _string(raw.get("instructions", ""), f"{where}: instructions", allow_empty=True,
                           at=(*at, "instructions"))
    if executor == "shell":
        if not command.strip():
            raise SpecError(f"{where}: a shell task needs a 'command'", at)
        _check_command(command, f"{where}: command", (*at, "command"))
    if executor == "claude" and not instructions:
        raise SpecError(f"{where}: a claude task needs 'instructions'", at)
    depends_on = _string_list(raw.get("depends_on", []), f"{where}: depends_on", at=(*at, "depends_on"))
    if len(set(depends_on)) != len(depends_on):
        raise SpecError(f"{where}: depends_on lists a task twice", (*at, "depends_on"))
    timeout = raw.get("timeout_seconds")
    strategy = raw.get("join_strategy", "all")
    if not isinstance(strategy, str) or not JOIN_STRATEGY.match(strategy):
        raise SpecError(f"{where}: join_strategy {strategy!r} must be all, success_only or quorum:N",
                        (*at, "join_strategy"))
    if strategy.startswith("quorum:") and int(strategy[7:]) > len(depends_on):
        raise SpecError(f"{where}: join_strategy {strategy} needs more sources than its {len(depends_on)} parents",
                        (*at, "join_strategy"))
    return TaskSpec(
        key=key,
        title=_string(raw.get("title") or key, f"{where}: title", at=(*at, "title")),
        command=command,
        instructions=instructions,
        executor=executor,
        depends_on=depends_on,
        owned_files=_patterns(raw.get("owned_files", []), f"{where}: owned_files", at=(*at, "owned_files")),
        timeout_seconds=None if timeout is None else _positive_int(timeout, f"{where}: timeout_seconds",
                                                                   at=(*at, "timeout_seconds")),
        join_strategy=strategy,
        network=_bool(raw.get("network", False), f"{where}: network", at=(*at, "network")),
        max_attempts=_positive_int(raw.get("max_attempts", 3), f"{where}: max_attempts", at=(*at, "max_attempts")),
    )


def _check_command(command: str, what: str, at: tuple[str | int, ...]) -> None:
    """A command is split like a shell would split it (and run without one): refuse now what cannot be
    split, rather than fail when the task runs."""
    if not command:
        return
    try:
        shlex.split(command)
    except ValueError as exc:
        raise SpecError(f"{what} cannot be split into words: {exc} in {command!r}", at) from None


def check_dag(edges: dict[str, list[str]]) -> list[str]:
    """Raise SpecError on a duplicate key, an unknown dependency or a cycle; return a topological order."""
    for key, deps in edges.items():
        for dep in deps:
            if dep not in edges:
                raise SpecError(f"task {key} depends on unknown task '{dep}'", ("tasks", key, "depends_on"))
            if dep == key:
                raise SpecError(f"task {key} depends on itself", ("tasks", key, "depends_on"))
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" | "done"
    for start in edges:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = "visiting"
                path.append(node)
            deps = edges[node]
            if i < len(deps):
                stack.append((node, i + 1))
                dep = deps[i]
                if state.get(dep) == "visiting":
                    cycle = path[path.index(dep):] + [dep]
                    raise SpecError(f"dependency cycle: {' -> '.join(cycle)}", ("tasks", node, "depends_on"))
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[node] = "done"
                path.pop()
                order.append(node)
    return order


def check_unique_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise SpecError(f"duplicate task key '{key}'", ("tasks", index, "key"))
        seen.add(key)


def _string(value: Any, what: str, allow_empty: bool = False, at: tuple[str | int, ...] | None = None) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise SpecError(f"{what} must be a {'string' if allow_empty else 'non-empty string'}", _at(at, what))
    return _no_nul(value, what, at)


def _string_list(value: Any, what: str, at: tuple[str | int, ...] | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SpecError(f"{what} must be a list of non-empty strings", _at(at, what))
    return [_no_nul(v, what, at) for v in value]


def _no_nul(value: str, what: str, at: tuple[str | int, ...] | None = None) -> str:
    """NUL ends a C string (git, the shell) and PostgreSQL refuses it in text: never a meaningful character."""
    if "\0" in value:
        raise SpecError(f"{what} contains a NUL character", _at(at, what))
    return value


def _patterns(value: Any, what: str, at: tuple[str | int, ...] | None = None) -> list[str]:
    patterns = _string_list(value, what, at)
    for pattern in patterns:
        try:
            validate_pattern(pattern)
        except BadPattern as exc:
            raise SpecError(f"{what}: {exc}", _at(at, what)) from None
    return patterns


def _bool(value: Any, what: str, at: tuple[str | int, ...] | None = None) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{what} must be true or false, not {value!r}", _at(at, what))
    return value


def _non_negative_int(value: Any, what: str, at: tuple[str | int, ...] | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError(f"{what} must be a whole number ≥ 0, not {value!r}", _at(at, what))
    return value


def _positive_int(value: Any, what: str, at: tuple[str | int, ...] | None = None) -> int:
    if _non_negative_int(value, what, at) == 0:
        raise SpecError(f"{what} must be ≥ 1", _at(at, what))
    return value


def _non_negative_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SpecError(f"{what} must be a number ≥ 0, not {value!r}", (what,))
    return float(value)


def _at(at: tuple[str | int, ...] | None, what: str) -> tuple[str | int, ...]:
    """Where a checked value is: given, or (for a field of the ticket itself) its name."""
    return at if at is not None else (what,)
