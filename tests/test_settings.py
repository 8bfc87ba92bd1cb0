"""Settings as an operator meets them: the documented production environment passes Django's deployment
check, every variable the code reads is in the README, and generated secrets stay out of the workspace.

Settings are read once per process, so each case starts a fresh Python with the environment it names.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import shlex
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYTHON_SOURCES = ("coordination", "merges", "dagmerge_site", "bench")
SHELL_SOURCES = ("scripts/setup.sh", "scripts/test.sh", "scripts/demo.sh", "scripts/browser-setup.sh",
                 "scripts/faults.sh", ".ci/run")
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_choice", "env_list", "env_proxy_header"}


def run_python(home: Path, code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with a minimal environment: only what the case sets, nothing of ours."""
    environment = {"PATH": os.environ["PATH"], "DAGMERGE_HOME": str(home), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=120)


def manage(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_python(home, f"import sys; sys.argv = ['manage.py', *{args!r}]; "
                            "import runpy; runpy.run_path('manage.py', run_name='__main__')", **env)


SECRET_KEY = "from dagmerge_site import settings; print(settings.SECRET_KEY)"  # the settings module alone


def production_environment() -> dict[str, str]:
    """The ``export`` lines of the README's production section, with a real secret for its ``...``."""
    section = README[README.index("## Running on PostgreSQL"):]
    block = section[section.index("```sh"):section.index("```", section.index("```sh") + 5)]
    env: dict[str, str] = {}
    for line in block.splitlines():
        if line.startswith("export "):
            env.update(word.split("=", 1) for word in shlex.split(line)[1:])
    assert env["DAGMERGE_SECRET_KEY"] == "..."
    env["DAGMERGE_SECRET_KEY"] = secrets.token_urlsafe(50)
    return env


def test_check_deploy_warns_of_nothing_with_the_documented_production_environment(tmp_path):
    documented = production_environment()

    production = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **documented)
    assert production.returncode == 0, production.stdout + production.stderr
    assert production.stdout.strip() == "System check identified no issues (0 silenced)."

    # Each of the HTTPS variables is what silences a warning: without them, Django says so.
    https = [name for name in documented if name.startswith(("DAGMERGE_HSTS", "DAGMERGE_SSL", "DAGMERGE_SECURE"))]
    plain = manage(tmp_path, "check", "--deploy", **{k: v for k, v in documented.items() if k not in https})
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr + plain.stdout


def _module_strings(tree: ast.Module) -> dict[str, str]:
    return {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _is_environ(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id.endswith("environ")) or (
        isinstance(node, ast.Attribute) and node.attr == "environ")


def variables_read_by_python(path: Path) -> set[str]:
    """Names passed to the env_* helpers, ``os.environ.get`` / ``environ.get``, ``os.getenv`` or read as
    ``os.environ[...]``, as a literal or a module-level constant."""
    tree = ast.parse(path.read_text())
    constants = _module_strings(tree)
    found: set[str] = set()

    def name_of(arg: ast.expr) -> None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in constants:
            found.add(constants[arg.id])

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Name) and func.id in ENV_HELPERS:
                name_of(node.args[0])
            elif isinstance(func, ast.Attribute) and (
                    (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv"):
                name_of(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            name_of(node.slice)
    return found


def variables_read_by_code() -> dict[str, str]:
    """Every variable dagmerge's code and scripts read, with a file that reads it."""
    found: dict[str, str] = {}
    for folder in PYTHON_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                found.update(dict.fromkeys(variables_read_by_python(path), str(path.relative_to(ROOT))))
    for script in SHELL_SOURCES:
        found.update(dict.fromkeys(re.findall(r"\$\{([A-Z][A-Z0-9_]*):-", (ROOT / script).read_text()), script))
    return found


def variables_in_readme_tables() -> set[str]:
    return {name for line in README.splitlines() if line.startswith("| `")
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}


def test_every_environment_variable_the_code_reads_is_in_the_readme_and_no_other():
    read = variables_read_by_code()
    documented = variables_in_readme_tables()

    assert {"DAGMERGE_SECRET_KEY", "ANTHROPIC_API_KEY", "DAYTONA_API_KEY", "DAGMERGE_SKIP_BROWSER"} <= set(read)
    assert {name: where for name, where in read.items() if name not in documented} == {}
    assert documented - set(read) == set()


def test_the_generated_secret_key_lives_in_its_own_0700_folder_outside_the_workspace(tmp_path):
    first = run_python(tmp_path, SECRET_KEY)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secrets" / "secret_key"
    assert first.stdout.strip() == key_file.read_text().strip() and len(first.stdout.strip()) >= 50
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / "secret_key").exists()
    assert run_python(tmp_path, SECRET_KEY).stdout == first.stdout  # made once, then read


def test_processes_starting_together_on_a_fresh_home_agree_on_one_key(tmp_path):
    with ThreadPoolExecutor(4) as pool:
        keys = {proc.stdout for proc in pool.map(lambda _: run_python(tmp_path, SECRET_KEY), range(4))}
    assert len(keys) == 1 and keys != {""}
    assert [p.name for p in (tmp_path / "secrets").iterdir()] == ["secret_key"]  # no candidate left behind


def test_a_key_left_beside_the_database_by_an_earlier_version_is_moved_not_replaced(tmp_path):
    legacy = tmp_path / "secret_key"
    legacy.write_text("an-old-key-" + "x" * 50)
    legacy.chmod(0o644)

    proc = run_python(tmp_path, SECRET_KEY)

    assert proc.stdout.strip() == "an-old-key-" + "x" * 50
    assert not legacy.exists()
    assert stat.S_IMODE((tmp_path / "secrets" / "secret_key").stat().st_mode) == 0o600


def test_a_workspace_inside_the_secrets_folder_or_around_it_stops_the_start(tmp_path):
    inside = run_python(tmp_path, SECRET_KEY, DAGMERGE_WORKSPACE=str(tmp_path / "secrets" / "workspace"))
    around = run_python(tmp_path, SECRET_KEY, DAGMERGE_SECRETS_DIR=str(tmp_path / "workspace" / "secrets"))
    for proc in (inside, around):
        assert proc.returncode != 0
        assert "must not contain each other: tasks work in the workspace" in proc.stderr
    assert not (tmp_path / "secrets").exists() and not (tmp_path / "workspace").exists()


def test_a_secrets_folder_outside_the_home_is_hidden_from_confined_tasks_too(settings, tmp_path):
    from coordination.running.workspace import hidden_from_tasks

    settings.DAGMERGE_SECRETS_DIR = tmp_path / "elsewhere"
    assert {tmp_path / "elsewhere", settings.DAGMERGE_HOME} <= set(hidden_from_tasks())
