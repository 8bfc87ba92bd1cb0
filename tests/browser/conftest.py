"""Browser tests: Debian's Chromium driven by Playwright against a real daphne (Channels' live server).

Run them on their own: ``DAGMERGE_HOME=$(mktemp -d) .venv/bin/python -m pytest tests/browser`` (the default
invocation skips this folder: once playwright's sync API has run, later async tests in the same process
fail). ``./scripts/browser-setup.sh`` installs Chromium and playwright.

Two processes share the work, as in production: the live server (daphne, forked at class set-up) serves
pages, websockets and review actions, and runs the jobs those actions start on its own thread pool; the
test process submits tickets and runs their tasks on a ``ThreadDispatcher``. Both use one SQLite file and
one workspace, set for the whole class before the server forks.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="run ./scripts/browser-setup.sh for the browser tests")

# Playwright's sync API keeps an asyncio loop in this thread; Django would take every ORM call made
# between two page actions for one made from async code. The calls are plain sync code: allow them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from channels.testing import ChannelsLiveServerTestCase  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright  # noqa: E402

from coordination.domain import dispatch  # noqa: E402
from coordination.jobs.dispatchers import ThreadDispatcher
from tests import factories  # noqa: E402
from tests.fakes import fake_claude  # noqa: E402

CHROMIUM = os.environ.get("DAGMERGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"  # ignored by git; CI keeps it
# The README's pictures: written there only when asked (DAGMERGE_DOCS_SCREENSHOTS=1), then committed.
DOCS = Path(__file__).resolve().parents[2] / "docs"
TIMEOUT_MS = 20_000


class BrowserTestCase(ChannelsLiveServerTestCase):
    """A live daphne and one Chromium per class; a fresh browser context (cookies) per test."""

    playwright: Playwright
    browser: Browser
    page: Page
    workspace: Path
    # A class that sets this gets an LLM tier: the fake Claude CLI (tests/fakes/fake_claude.py) with this
    # scenario, an API key in both processes' environment. Without it conflicts go straight to a person.
    llm_scenario: dict | None = None
    fake_claude_dir: Path

    @classmethod
    def setUpClass(cls) -> None:
        cls.workspace = Path(tempfile.mkdtemp(prefix="dagmerge-browser-"))
        cls._api_key = os.environ.pop("ANTHROPIC_API_KEY", None)
        llm = {}
        if cls.llm_scenario is not None:
            os.environ["ANTHROPIC_API_KEY"] = "sk-fake-for-tests"
            cls.fake_claude_dir = cls.workspace / "fake-claude"
            cli = fake_claude.install(cls.fake_claude_dir, cls.llm_scenario)
            llm = {"DAGMERGE_CLAUDE_CLI": str(cli), "DAGMERGE_LLM_MAX_RETRIES": 0, "DAGMERGE_LLM_TIMEOUT": 60}
        cls._shared = override_settings(
            DAGMERGE_WORKSPACE=cls.workspace,
            DAGMERGE_DISPATCH="threads",  # the server runs the jobs its actions start (no Celery here)
            DAGMERGE_RELAY_INTERVAL_MS=20,
            REDIS_URL="",
            CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
            **llm,
        )
        cls._shared.enable()
        connections.close_all()  # the server forks: it must not share this process's SQLite handles
        dispatch.use(None)
        super().setUpClass()
        cls.playwright = sync_playwright().start()
        cls.browser = cls.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.browser.close()
        cls.playwright.stop()
        super().tearDownClass()
        cls._shared.disable()
        os.environ.pop("ANTHROPIC_API_KEY", None)
        if cls._api_key is not None:
            os.environ["ANTHROPIC_API_KEY"] = cls._api_key
        shutil.rmtree(cls.workspace, ignore_errors=True)

    def setUp(self) -> None:
        super().setUp()
        # The suite-wide fixture gave this test its own workspace and a recording dispatcher; the live
        # server was forked with the class's workspace, and this test's workers must use the same.
        self._workspace = override_settings(DAGMERGE_WORKSPACE=self.workspace)
        self._workspace.enable()
        self.pool: ThreadDispatcher | None = None
        self.context = self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(
            f"{message.type}: {message.text} [{message.location.get('url', '')}]"))
        self.page.on("pageerror", lambda error: self.console.append(f"error: {error}"))
        expect.set_options(timeout=TIMEOUT_MS)

    def tearDown(self) -> None:
        self.context.close()
        if self.pool is not None:
            self.pool.wait_idle(timeout=30)
            self.pool.shutdown()
        dispatch.use(None)
        self._workspace.disable()
        super().tearDown()

    def workers(self, count: int = 3) -> ThreadDispatcher:
        """Jobs of this process (task runs, merges) go to a thread pool from now on."""
        self.pool = ThreadDispatcher(count)
        dispatch.use(self.pool)
        return self.pool

    def url(self, path: str) -> str:
        return self.live_server_url + path

    def log_in(self, user, page: Page | None = None) -> None:
        """Sign ``user`` in on ``page`` (this test's page unless another context's is given)."""
        page = page or self.page
        factories.with_password(user)
        page.goto(self.url("/accounts/login/"))
        page.fill("input[name=username]", user.get_username())
        page.fill("input[name=password]", factories.PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator(".topbar")).to_contain_text(f"Log out {user.get_username()}")

    def screenshot(self, name: str, full_page: bool = True, docs: bool = False) -> Path:
        """Into ``artifacts/``; ``full_page=False``: what the first screen shows (the README's pictures);
        ``docs``: also into ``docs/`` when DAGMERGE_DOCS_SCREENSHOTS is set."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        if docs and os.environ.get("DAGMERGE_DOCS_SCREENSHOTS"):
            shutil.copyfile(path, DOCS / path.name)
        return path

    def console_errors(self) -> list[str]:
        """Errors the page logged, but for the browser's own request for /favicon.ico (not the page's)."""
        return [m for m in self.console if m.startswith("error:") and not m.endswith("/favicon.ico]")]

    def wait_live(self, page: Page | None = None) -> None:
        """Until the page's websocket is open (the badge says so)."""
        expect((page or self.page).locator("#live-badge")).to_have_attribute("data-state", "live")

