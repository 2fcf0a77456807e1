"""Fixtures of the browser tests: one server and one headless Chromium per test process, a context per person.

The tests use Playwright's async API on pytest-asyncio's session loop (each module says
``pytestmark = pytest.mark.asyncio(loop_scope="session")``): the browser lives across tests, and
the sync API would leave its own loop marked as running between calls, which breaks every
asyncio test that runs after it in the same process.

Screenshots go to ``test-artifacts/screenshots/``; when a test fails, each page it left open is
saved there as ``TEST--failure-N.png`` and the server's output is added to the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.browser.browser_support import (
    CHROMIUM,
    MISSING_CHROMIUM,
    SCREENSHOTS,
    Browsers,
    Portal,
    SignedIn,
    artifact_name,
    http_server,
    screenshot,
)

#: How long an expectation waits for a page to show something (a stream update, a navigation).
expect.set_options(timeout=10_000)

#: The reports of a test's phases (setup, call, teardown), for its fixtures' teardown to read.
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


def failed(item: pytest.Item) -> bool:
    return any(report.failed for report in item.stash.get(PHASE_REPORTS, {}).values())


@pytest.fixture(scope="session")
def portal(tmp_path_factory: pytest.TempPathFactory, key_folder: Path) -> Iterator[Portal]:
    """One `presenced serve --demo --http` for the test process, on real time."""
    with http_server(tmp_path_factory.mktemp("browser") / "data", key_folder=key_folder) as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, for the test process (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="session")
def signed_in() -> SignedIn:
    """Who has signed in on which server in this test process, with the cookies of that sign-in."""
    return {}


@pytest_asyncio.fixture(loop_scope="session")
async def browsers(chromium: Browser, signed_in: SignedIn, request: pytest.FixtureRequest) -> AsyncIterator[Browsers]:
    """Contexts for this test; when it fails, a screenshot of each page still open and the servers' output."""
    name = artifact_name(request.node.name)
    for stale in SCREENSHOTS.glob(f"{name}--failure-*.png"):
        stale.unlink()
    opened = Browsers(chromium, signed_in)
    try:
        yield opened
    finally:
        if failed(request.node):
            for number, page in enumerate(opened.open_pages(), start=1):
                try:
                    await screenshot(page, f"{name}--failure-{number}")
                except Exception as error:  # a crashed page: report the others
                    request.node.add_report_section("teardown", f"failure screenshot {number}", repr(error))
            for portal in opened.portals:
                request.node.add_report_section("teardown", f"presenced server log ({portal.url})", portal.server.log())
        await opened.close()
        for portal in opened.portals:
            if not portal.server.alive:
                pytest.fail(f"the server exited (code {portal.server.process.returncode}):\n{portal.server.log()}")
