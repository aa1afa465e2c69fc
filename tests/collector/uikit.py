"""The web UI in a real browser: Debian's Chromium driven by Playwright (its own browser download cannot work
here, and is never used), against a real collector process with --http-listen.

    def test_x(browser, tmp_path):
        with collector_ui(tmp_path, events) as ui:
            page = ui.open()               # a new page on the UI, console errors collected
            ...
            assert ui.console_errors == []

The browser is skipped only when /usr/bin/chromium is absent (`make apt` installs it)."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.collector import RunningCollector
from tests.collector.httpkit import ingest, with_http

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    # One browser per module, closed before the next module's tests, which may run event loops of their own.
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make apt` installs Debian's chromium, which these tests drive")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class CollectorUI:
    """A collector serving the UI, and the browser pages opened on it."""

    collector: RunningCollector
    base_url: str
    browser: object
    context_options: dict = field(default_factory=dict)
    console_errors: list[str] = field(default_factory=list)
    _contexts: list = field(default_factory=list)

    def open(self, path: str = "/") -> object:
        context = self.browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True,
                                           **self.context_options)
        self._contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        page.goto(self.base_url + path)
        return page

    def _console(self, message) -> None:
        # Chromium logs every 4xx answer as "Failed to load resource"; those the tests cause on purpose (a
        # 401 before the token, a 422 shown at its field) are the API's answers, which the page shows.
        if message.type == "error" and not message.text.startswith("Failed to load resource: the server "
                                                                   "responded with a status of 4"):
            self.console_errors.append(message.text)

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@contextlib.contextmanager
def collector_ui(browser, tmp_path: Path, events: list[dict], *extra: str, scheme: str = "http",
                 host: str = "127.0.0.1", context_options: dict | None = None) -> Iterator[CollectorUI]:
    """A collector on a fresh SQLite store holding `events`, its feeds folder tmp_path/feeds, with the UI."""
    db = f"sqlite:///{tmp_path / 'collector.sqlite'}"
    if events:
        # On a thread of its own: Playwright's sync API keeps an event loop of its own in this one.
        with ThreadPoolExecutor(1) as worker:
            worker.submit(ingest, db, events).result()
    feeds = tmp_path / "feeds"
    feeds.mkdir(exist_ok=True)
    running, port = with_http(db, feeds, *extra)
    with running:
        ui = CollectorUI(running, f"{scheme}://{host}:{port}", browser, context_options or {})
        try:
            yield ui
        finally:
            ui.close()
