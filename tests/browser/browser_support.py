"""What the browser tests share: a plain-HTTP server process, Debian's Chromium, artifacts, sign-in, contrast."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from playwright.async_api import Browser, BrowserContext, Page, expect

from presenced.services.demo import DEMO_DOMAIN, DEMO_PUBLIC_APP_ID, DEMO_TENANT_ID, demo_password, demo_user_id
from tests.e2e.server_process import ServerProcess

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
MISSING_CHROMIUM = f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install chromium)"


class Portal:
    """A running `presenced serve --demo --http` and who can sign in to it.

    The demo's ids and passwords are fixed (derived from the users' names), so they are taken from
    ``presenced.services.demo`` rather than from `presenced demo --json`, which would reset the tenant
    and cost a process and ten password hashes per server.
    """

    tenant_id = DEMO_TENANT_ID
    #: The demo public client: delegated presence permissions, loopback redirect URIs on any port.
    public_app_id = DEMO_PUBLIC_APP_ID
    public_app_name = "Presence Desktop (demo)"

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    @staticmethod
    def upn(nickname: str) -> str:
        return f"{nickname}@{DEMO_DOMAIN}"

    @staticmethod
    def password(nickname: str) -> str:
        return demo_password(nickname)

    @staticmethod
    def user_id(nickname: str) -> str:
        return demo_user_id(nickname)


@contextmanager
def http_server(data_dir: Path, *extra: str, key_folder: Path | None = None) -> Iterator[Portal]:
    """`presenced serve --demo --http --port 0` on ``data_dir``; stopped (SIGTERM, then SIGKILL after 3 s) afterwards.

    As ``tests.e2e.server_process.running_server`` (which insists on HTTPS), but over plain HTTP: the
    browser needs no CA, and the cookies are not Secure (that flag is set on HTTPS, which tests/e2e covers).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    if key_folder is not None and not (data_dir / "keys").exists():
        shutil.copytree(key_folder, data_dir / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "presenced", "serve", "--demo", "--http", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    server = ServerProcess(process, data_dir, env)
    try:
        server.wait_until_listening()
        if not server.url.startswith("http://"):
            raise AssertionError(f"expected a plain HTTP server, got {server.url}:\n{server.log()}")
        yield Portal(server)
    finally:
        server.stop(3)


def artifact_name(name: str) -> str:
    """A file name from a test or step name: letters, digits, dots, dashes and underscores only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "page"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``test-artifacts/screenshots/NAME.png`` and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{artifact_name(name)}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(context: BrowserContext, portal: Portal, nickname: str, target: str = "/me") -> Page:
    """Sign ``nickname`` in through the sign-in page (unless ``context`` already holds their session) and end at
    ``target``, which may be a page anyone can see."""
    page = await context.new_page()
    await page.goto(f"/signin?next={quote(target, safe='')}")
    if urlsplit(page.url).path == "/signin":
        await page.get_by_label("Email or user name").fill(portal.upn(nickname))
        await page.get_by_label("Password").fill(portal.password(nickname))
        await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{portal.url}{target}")
    return page


#: (server URL, nickname) -> the cookies of a context in which that person signed in.
SignedIn = dict[tuple[str, str], Any]


class Browsers:
    """The browser contexts of one test: one per person, each with its own cookies; all closed afterwards.

    A person signs in through the sign-in page the first time in a test process; later contexts start
    with the cookies of that sign-in (``signed_in``), which saves a password check per context.
    """

    def __init__(self, browser: Browser, signed_in: SignedIn) -> None:
        self.browser, self.signed_in = browser, signed_in
        self.contexts: list[BrowserContext] = []
        self.portals: list[Portal] = []

    async def new_context(self, portal: Portal, **options: Any) -> BrowserContext:
        """A fresh context whose relative URLs go to ``portal`` (``options`` as Browser.new_context takes them)."""
        context = await self.browser.new_context(base_url=portal.url, **options)
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        if portal not in self.portals:
            self.portals.append(portal)
        return context

    async def sign_in(self, portal: Portal, nickname: str, target: str = "/me", **options: Any) -> Page:
        """A new context in which ``nickname`` is signed in; its page shows ``target``."""
        key = (portal.url, nickname)
        if key in self.signed_in:
            options = {"storage_state": self.signed_in[key], **options}
        context = await self.new_context(portal, **options)
        page = await sign_in(context, portal, nickname, target)
        self.signed_in[key] = await context.storage_state()
        return page

    def open_pages(self) -> list[Page]:
        return [page for context in self.contexts for page in context.pages if not page.is_closed()]

    async def close(self) -> None:
        for context in self.contexts:
            await context.close()


#: WCAG 2 contrast of each visible element matching a selector: its colour over the background it is drawn on
#: (the first opaque background of it or an ancestor, with the translucent ones in between blended in).
CONTRAST_JS = """
(selector) => {
  const rgba = (text) => {
    const parts = text.match(/rgba?\\(([^)]*)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3])).concat([1]);
  const backdrop = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour[3] > 0) layers.push(colour);
      if (colour[3] >= 1) break;
    }
    return layers.reverse().reduce((below, layer) => over(layer, below), [255, 255, 255, 1]);
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  };
  return Array.from(document.querySelectorAll(selector))
    .filter((e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden")
    .map((e) => {
      const background = backdrop(e);
      const colour = over(rgba(getComputedStyle(e).color), background);
      const label = `${e.tagName.toLowerCase()}${e.className ? "." + e.className.trim().split(/\\s+/).join(".") : ""}`;
      return { element: label, text: e.textContent.trim().replace(/\\s+/g, " ").slice(0, 40),
               ratio: Math.round(ratio(colour, background) * 100) / 100 };
    });
}
"""


async def contrast(page: Page, selector: str) -> list[dict[str, Any]]:
    """Each visible element matching ``selector``: {"element", "text", "ratio"} (see ``CONTRAST_JS``)."""
    found: list[dict[str, Any]] = await page.evaluate(CONTRAST_JS, selector)
    return found
