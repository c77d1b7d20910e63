"""Shared pieces for browser tests (tests/test_browser_*.py): a Playwright page on Debian's
Chromium against pytest-django's live server, screenshots of each step, and an axe-core check.
One Chromium serves the browser tests of a pytest process (SharedBrowser); each test gets a
context (cookies, storage) of its own.

A browser test module loads these with `pytest_plugins = ["tests.browser"]` and marks itself
`pytestmark = pytest.mark.browser`. Locally the tests skip when /usr/bin/chromium (or
Playwright) is missing; in CI (CI=true) they fail instead, as the other service-backed tests do.
We never run `playwright install`: the browser is Debian's chromium package.
"""

import os
import re
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SHOTS_ROOT = Path(os.environ.get("BROWSER_SHOTS_DIR", "/tmp/browser-shots"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# axe-core impacts that fail a test; "moderate" and "minor" are reported but tolerated.
BLOCKING_IMPACTS = ("serious", "critical")
TIMEOUT_MS = 5_000


def _unavailable(reason):
    if IN_CI:
        pytest.fail(f"CI needs the browser tests to run: {reason}", pytrace=False)
    pytest.skip(f"{reason} (runs in CI)")


class SharedBrowser:
    """One headless Chromium per pytest process (per xdist worker), shared by the browser tests
    that run in a row: launching Chromium costs about a second of CPU, a fresh context per test
    (browser_page) isolates the tests just as well. Started by the first browser test, stopped
    after the last one of a row (see pytest_runtest_teardown), so that the tests after it run
    without Playwright's event loop in their thread."""

    def __init__(self):
        self.playwright = self.browser = None
        self._async_unsafe = None

    @property
    def running(self):
        return self.playwright is not None

    def get(self):
        if self.browser is not None and self.browser.is_connected():
            return self.browser
        if self.running:  # Chromium went away (crashed): start afresh
            self.stop()
        from playwright.sync_api import sync_playwright

        # Playwright's sync API keeps an event loop running in this thread, and Django then
        # refuses the test's own (synchronous) database calls. The documented way out for
        # Playwright with pytest-django; the live server answers requests in its own thread
        # either way. Set only while Playwright runs.
        self._async_unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        self.playwright = sync_playwright().start()
        self.browser = self.playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        return self.browser

    def stop(self):
        if not self.running:
            return
        try:
            if self.browser is not None and self.browser.is_connected():
                self.browser.close()
        finally:
            # While Playwright runs, Django's per-context connection store hands this thread a
            # connection of its own; close it here, or PostgreSQL refuses to drop the test
            # database.
            connections.close_all()
            self.playwright.stop()
            self.playwright = self.browser = None
            if self._async_unsafe is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = self._async_unsafe


SHARED = SharedBrowser()


def _uses_browser(item):
    return item is not None and "playwright_browser" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield
    # After the test's own teardown (the live server's database flush included): keep Chromium
    # for the next test if it is a browser test too.
    if SHARED.running and not _uses_browser(nextitem):
        SHARED.stop()


def pytest_sessionfinish(session):
    SHARED.stop()


@pytest.fixture
def playwright_browser():
    """Debian's headless Chromium, driven by Playwright's sync API: this process's shared
    browser. Open a context of your own (new_context) and close it at the end of the test."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:  # pragma: no cover - requirements-dev.txt has it
        _unavailable(f"Playwright for Python is not installed: {error}")
    return SHARED.get()


@pytest.fixture
def browser_page(playwright_browser, live_server):
    """A fresh browser tab whose relative URLs go to the live server."""
    context = playwright_browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.set_default_navigation_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


class Screenshots:
    """Numbered full-page screenshots of each step, in one folder per test."""

    def __init__(self, folder):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        self.count = 0

    def take(self, page, step):
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screenshots(request):
    shots = Screenshots(SHOTS_ROOT / re.sub(r"[^\w.-]+", "_", request.node.name))
    yield shots
    print(f"\nScreenshots of {request.node.name}: {shots.folder}")


def axe_violations(page, impacts=BLOCKING_IMPACTS):
    """axe-core's violations of the given impacts on the page as it is now, one readable line
    per rule with the offending elements."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [_describe(v) for v in results.response["violations"] if v["impact"] in impacts]


def _describe(violation):
    nodes = "; ".join(
        f"{' '.join(map(str, node['target']))} ({_first_line(node.get('failureSummary'))})"
        for node in violation["nodes"][:5]
    )
    more = len(violation["nodes"]) - 5
    return (
        f"[{violation['impact']}] {violation['id']}: {violation['help']} "
        f"-> {nodes}{f' ...and {more} more' if more > 0 else ''} ({violation['helpUrl']})"
    )


def _first_line(summary):
    lines = [line.strip() for line in (summary or "").splitlines() if line.strip()]
    return lines[1] if len(lines) > 1 else (lines[0] if lines else "")


class AccessibilityAudit:
    """Runs axe on every page (and dialog) a journey visits; the test asserts at the end so
    one run lists every problem. Moderate and minor findings are printed, not failed."""

    def __init__(self):
        self.found, self.tolerated = {}, {}

    def check(self, page, where):
        impacts = ("minor", "moderate", *BLOCKING_IMPACTS)
        where = f"{where} ({page.url})"
        for line in axe_violations(page, impacts):
            blocking = line.startswith(tuple(f"[{impact}]" for impact in BLOCKING_IMPACTS))
            (self.found if blocking else self.tolerated).setdefault(where, []).append(line)
        return self.found.get(where, [])

    @staticmethod
    def _report(by_page):
        return "\n".join(f"{where}:\n  " + "\n  ".join(lines) for where, lines in by_page.items())

    def assert_clean(self):
        assert not self.found, (
            f"Serious or critical accessibility violations:\n{self._report(self.found)}"
        )


@pytest.fixture
def accessibility():
    audit = AccessibilityAudit()
    yield audit
    if audit.tolerated:
        print(f"\naxe, moderate/minor (not failing):\n{audit._report(audit.tolerated)}")
