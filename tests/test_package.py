"""dagmerge as a package: what ``pip install dagmerge`` (no extras) gives must work on its own.

The ``packaging`` tests build the wheel from this checkout, install it without extras in a fresh virtual
environment (versions from constraints.txt) and use it from an empty directory, as someone who installed
it would: the CLI runs a ticket, the demo serves the dashboard (templates and static files from the wheel)
while its worker finishes a ticket.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.scenarios import sh, source_repo

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGES = ("dagmerge_site", "coordination", "merges")
SITE_FOLDERS = ("templates", "static")  # top-level in the checkout, inside dagmerge_site when installed
AGENTS_EXTRA = ("claude_agent_sdk", "daytona")


def _pyproject() -> dict:
    return tomllib.loads((CHECKOUT / "pyproject.toml").read_text())


def _source_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def test_pyproject_lists_every_package_and_maps_templates_and_static_into_the_site_package():
    setuptools = _pyproject()["tool"]["setuptools"]
    found = {".".join(init.parent.relative_to(CHECKOUT).parts)
             for package in PACKAGES for init in (CHECKOUT / package).rglob("__init__.py")}
    assert set(setuptools["packages"]) == found | {f"dagmerge_site.{folder}" for folder in SITE_FOLDERS}
    assert setuptools["package-dir"] == {f"dagmerge_site.{folder}": folder for folder in SITE_FOLDERS}


def test_settings_find_templates_and_static_files_in_the_checkout(settings):
    assert settings.TEMPLATES[0]["DIRS"] == [CHECKOUT / "templates"]
    assert settings.STATICFILES_DIRS == [CHECKOUT / "static"]


def test_without_the_agents_extra_the_cli_dashboard_and_worker_import(tmp_path):
    """The agents extra made absent (None in sys.modules), every module of the three packages imports, the
    ASGI app and the worker's jobs load, and the CLI runs a shell ticket."""
    repo = source_repo(tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"title": "no extras", "repository": str(repo.path), "base_branch": "main",
                                "tasks": [{"key": "A", "command": sh("echo a > a.txt")}]}))
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        sys.modules.update(dict.fromkeys({AGENTS_EXTRA!r}))  # import of these fails: ModuleNotFoundError
        from dagmerge_site.cli import main
        assert main(["run", {str(spec)!r}]) == 0
        import dagmerge_site.asgi
        from dagmerge_site.celery import app
        app.loader.import_default_modules()
        assert "coordination.run_task" in app.tasks
        for name in {PACKAGES!r}:
            for module in pkgutil.walk_packages(importlib.import_module(name).__path__, name + "."):
                importlib.import_module(module.name)
        print("imported", *sorted(m for m in sys.modules if m.startswith({AGENTS_EXTRA!r})))
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DAGMERGE_HOME"] = str(tmp_path / "home")
    proc = subprocess.run([sys.executable, "-c", script], cwd=CHECKOUT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "imported claude_agent_sdk daytona"  # the None entries only


# -- the built wheel, installed without extras ------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (a build leaves build/ and *.egg-info where it runs)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    for name in (*PACKAGES, *SITE_FOLDERS):
        shutil.copytree(CHECKOUT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(source)],
         timeout=180)
    [built] = (root / "dist").glob("dagmerge-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel and its dependencies only: no extras, no checkout."""
    path = tmp_path_factory.mktemp("venv") / "venv"
    _run([sys.executable, "-m", "venv", str(path)], timeout=120)
    _run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile", "-c",
          str(CHECKOUT / "constraints.txt"), str(wheel)], timeout=240)
    return path


@pytest.mark.packaging
def test_the_wheel_carries_every_module_template_and_static_file(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if ".dist-info/" not in name}
    expected = {str(p.relative_to(CHECKOUT)) for package in PACKAGES for p in _source_files(CHECKOUT / package)}
    expected |= {f"dagmerge_site/{p.relative_to(CHECKOUT)}" for folder in SITE_FOLDERS
                 for p in _source_files(CHECKOUT / folder)}
    assert any(name.startswith("dagmerge_site/templates/coordination/") for name in expected)
    assert names == expected


@pytest.mark.packaging
def test_installed_without_extras_it_runs_a_ticket_and_serves_the_dashboard(venv, tmp_path):
    bin_dir = venv / "bin"
    site = tmp_path / "site"  # where the user starts dagmerge: DAGMERGE_HOME defaults to ./var here
    site.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGMERGE_", "DJANGO_", "DAYTONA_", "ANTHROPIC_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "VIRTUAL_ENV")}

    where = _run([str(bin_dir / "python"), "-c", "import importlib.util as u, dagmerge_site; "
                  f"print(dagmerge_site.__file__, *[bool(u.find_spec(m)) for m in {AGENTS_EXTRA!r}])"],
                 cwd=site, env=env).stdout.split()
    assert where == [str(venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" /
                         "site-packages" / "dagmerge_site" / "__init__.py"), "False", "False"]
    assert "submit" in _run([str(bin_dir / "dagmerge"), "--help"], cwd=site, env=env).stdout

    repo = source_repo(tmp_path)
    spec = site / "spec.json"
    spec.write_text(json.dumps({"title": "from the wheel", "repository": str(repo.path), "base_branch": "main",
                                "tasks": [{"key": "A", "command": sh("echo a > a.txt")},
                                          {"key": "B", "depends_on": ["A"], "command": sh("test -f a.txt")}]}))
    report = json.loads(_run([str(bin_dir / "dagmerge"), "run", "spec.json", "--json"], cwd=site, env=env,
                             timeout=120).stdout)
    assert report["status"] == "done" and repo.show(report["branch"], "a.txt") == "a\n"
    assert (site / "var" / "dagmerge.sqlite3").is_file()

    # The demo: the dashboard on daphne and a Celery worker, with an API key but no SDK for the agent tier.
    port = _free_port()
    demo = subprocess.Popen([str(bin_dir / "dagmerge"), "demo", "--port", str(port)], cwd=site,
                            env={**env, "ANTHROPIC_API_KEY": "sk-ant-not-used"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = ""
    try:
        deadline = time.monotonic() + 60
        while "Ctrl-C stops it" not in output:
            assert time.monotonic() < deadline and demo.poll() is None, output
            output += demo.stdout.readline()
        password = re.search(r"log in as admin / (\S+)", output).group(1)
        clean, conflicting = (int(n) for n in re.findall(r"/tickets/(\d+)/", output))
        _wait_for_port(port, demo)
        base = f"http://127.0.0.1:{port}"
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

        login = _get(browser, f"{base}/accounts/login/")
        assert 'href="/static/dagmerge.css"' in login
        assert _get(browser, f"{base}/static/dagmerge.css") == (CHECKOUT / "static" / "dagmerge.css").read_text()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
        form = urllib.parse.urlencode({"username": "admin", "password": password, "csrfmiddlewaretoken": token})
        tickets = browser.open(f"{base}/accounts/login/", data=form.encode(), timeout=30).read().decode()
        assert "from the wheel" in tickets and "Demo: set up" in tickets

        assert "Integrate X and Y" in _wait_for_badge(browser, f"{base}/tickets/{clean}/", "done", demo)
        status = json.loads(_run([str(bin_dir / "dagmerge"), "status", str(clean), "--json"], cwd=site,
                                 env=env).stdout)
        assert [t["status"] for t in status["tasks"]] == ["succeeded"] * 4
        _wait_for_badge(browser, f"{base}/tickets/{conflicting}/", "awaiting_review", demo)
        assert "the agent tier is unavailable" in _get(browser, f"{base}/reviews/")
    finally:
        demo.send_signal(signal.SIGTERM)  # the demo stops the servers it started
        demo.wait(timeout=60)


def _run(argv: list[str], *, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, demo: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline and demo.poll() is None, "daphne did not start listening"
            time.sleep(0.2)


def _get(browser: urllib.request.OpenerDirector, url: str) -> str:
    response = browser.open(url, timeout=30)
    assert response.status == 200 and response.url == url, (url, response.url)
    return response.read().decode()


def _wait_for_badge(browser: urllib.request.OpenerDirector, url: str, status: str,
                    demo: subprocess.Popen) -> str:
    """The ticket page once its status badge reads ``status`` (the demo's worker moves it)."""
    deadline = time.monotonic() + 90
    while True:
        page = _get(browser, url)
        header = re.search(r'<h1>#\d+ [^<]*<span class="badge st-(\w+)">', page)
        if header and header.group(1) == status:
            return page
        assert time.monotonic() < deadline and demo.poll() is None, header and header.group(0)
        time.sleep(1)
