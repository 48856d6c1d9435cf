"""Browser fixtures: the app served by uvicorn on a free port, and headless Debian Chromium.

Why playwright's *async* API: the suite runs every async fixture and test on one session-scoped
event loop (pytest-asyncio, asyncio_mode=auto). The async API lives on that loop like any other
async fixture, so the browser tests can also use the async, session-scoped database fixtures
(tenant_a, add_user) directly. The sync API would need plain `def` tests and runs its own loop
inside greenlets; it works, but mixing it with the async session fixtures is fragile.

The server is the real ASGI app with `database=None`, so its lifespan opens engines on the
server thread's own event loop (engines cannot be shared across event loops) and bootstraps.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Response,
    async_playwright,
)

from tenantcrm.settings import REPO_ROOT

CHROMIUM = Path(os.environ.get("TENANTCRM_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root (containers, CI)
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
HTMX = REPO_ROOT / "web" / "static" / "vendor" / "htmx.min.js"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
TIMEOUT_MS = 10_000


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(reason: str) -> None:
    """Skip on a developer machine; on CI (which installs both) a missing piece is a failure."""
    if _on_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (or set TENANTCRM_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


NewContext = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture
async def new_context(browser: Browser, live_server: str) -> AsyncIterator[NewContext]:
    if not HTMX.exists():
        _missing(f"{HTMX.relative_to(REPO_ROOT)} is missing: run `make assets`")
    """Make fresh contexts (own cookies) against the live server; all closed after the test."""
    contexts: list[BrowserContext] = []

    async def make(**options: object) -> BrowserContext:
        options = {"locale": "zh-CN", "base_url": live_server, **options}
        context = await browser.new_context(**options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        try:
            await context.close()
        except Error:
            pass


@pytest.fixture
def page_errors() -> list[str]:
    """Script errors and console errors (a CSP refusal shows up here) seen by `page`."""
    return []


@pytest.fixture
def http_errors() -> list[str]:
    """Responses of 400 or more seen by `page`, as "422 POST /path"."""
    return []


@pytest.fixture
async def page(
    new_context: NewContext, page_errors: list[str], http_errors: list[str]
) -> AsyncIterator[Page]:
    """A page in a fresh zh-CN context: no cookies shared with any other test."""
    context = await new_context()
    opened = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # A failed load is logged as a console error without its address: `http_errors` has it.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            page_errors.append(f"console: {message.text}")

    def on_response(response: Response) -> None:
        path = urlsplit(response.url).path
        # The app has no icon; Chromium asks for one on every page and gets the 404 page.
        if response.status >= 400:
            http_errors.append(f"{response.status} {response.request.method} {path}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: page_errors.append(f"pageerror: {exc}"))
    opened.on("response", on_response)
    yield opened


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/screenshots when TENANTCRM_SCREENSHOTS=1 (to refresh the docs), else a temp folder,
    so an ordinary test run leaves the work tree clean."""
    if os.environ.get("TENANTCRM_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
