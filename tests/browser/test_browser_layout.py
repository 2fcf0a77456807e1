"""Layout a reader notices, at a phone's width and on larger screens: identifiers (ids, user names) wrap only
after their separators, and a form control shows each of its choices whole."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from presenced.services.demo import DEMO_DAEMON_APP_ID
from tests.browser.browser_support import Browsers, Portal, artifact_name, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")

#: The person these tests sign in (they only look), and the administrator, for the pages only administrators see.
WHO = "pradeep"
ADMIN = "adele"
DAEMON_APP = f"/apps/{DEMO_DAEMON_APP_ID}"
#: A phone, a small laptop and a desktop.
SCREENS = {
    "phone": {"width": 375, "height": 667},
    "laptop": {"width": 1080, "height": 720},
    "desktop": {"width": 1280, "height": 800},
}
#: A GUID, and a user name or e-mail address, as they appear in a page's text.
GUID = r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
ADDRESS = r"[A-Za-z0-9_%+.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
#: The pages that show GUIDs (a permission's, an app's, the consents) and user names (People).
WITH_GUIDS = ["/permissions/Presence.Read", "/permissions/Presence.Read.All", "/apps", DAEMON_APP, "/consents"]
WITH_ADDRESSES = ["/people"]
#: The pages with choices to pick from a list.
WITH_SELECTS = ["/me"]

#: Each visible occurrence of a pattern in the page's text, split into the lines it is drawn on, and the element
#: it starts in.
#: Text flows together within a block (inline elements, <wbr> and all), so an address split into spans is one
#: occurrence; a <br> ends a line. A line break is found where a character starts below the middle of the one
#: before it.
LINES_JS = """
(source) => {
  const pattern = new RegExp(source, "g");
  const blockOf = (node) => {
    let element = node.parentElement;
    while (element && getComputedStyle(element).display.startsWith("inline")) element = element.parentElement;
    return element;
  };
  const runs = new Map();
  const runOf = (node) => {
    const block = blockOf(node);
    if (!runs.has(block)) runs.set(block, { text: "", at: [] });
    return runs.get(block);
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT | NodeFilter.SHOW_ELEMENT, {
    acceptNode: (node) => ["SCRIPT", "STYLE", "TEMPLATE"].includes(node.nodeName)
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (node.nodeName === "BR") { const run = runOf(node); run.text += "\\n"; run.at.push(null); }
      continue;
    }
    const run = runOf(node);
    for (let offset = 0; offset < node.data.length; offset++) {
      run.text += node.data[offset];
      run.at.push([node, offset]);
    }
  }
  const box = (at) => {
    if (!at) return null;
    const range = document.createRange();
    range.setStart(at[0], at[1]);
    range.setEnd(at[0], at[1] + 1);
    const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0 && r.height > 0);
    return rects.length ? rects[0] : null;
  };
  const where = (node) => {
    const element = node.parentElement;
    const classes = Array.from(element.classList).map((c) => "." + c).join("");
    return `${element.tagName.toLowerCase()}${element.id ? "#" + element.id : ""}${classes}`;
  };
  const found = [];
  for (const run of runs.values()) {
    for (const match of run.text.matchAll(pattern)) {
      const lines = [];
      let line = "", previous = null, visible = true;
      for (let i = match.index; i < match.index + match[0].length; i++) {
        const rect = box(run.at[i]);
        if (!rect) { visible = false; break; }
        if (previous && rect.top > previous.top + previous.height / 2) { lines.push(line); line = ""; }
        line += run.text[i];
        previous = rect;
      }
      if (visible) { lines.push(line); found.push({ text: match[0], lines, in: where(run.at[match.index][0]) }); }
    }
  }
  return found;
}
"""

#: Each visible select: its width, and the drawn width of each of its options' text that does not fit in it.
#: A select as wide as its widest option (width: auto) shows how much room besides the text it needs (padding,
#: border, the arrow); an option fits if its text, measured in the select's font, plus that room is no wider than
#: the select.
CUT_OPTIONS_JS = """
() => {
  const context = document.createElement("canvas").getContext("2d");
  return Array.from(document.querySelectorAll("select")).filter((s) => s.getClientRects().length > 0).map((select) => {
    context.font = getComputedStyle(select).font;
    const options = Array.from(select.options).map((o) => ({ text: o.text, width: context.measureText(o.text).width }));
    const width = select.getBoundingClientRect().width;
    const set = select.style.width;
    select.style.width = "auto";
    const natural = select.getBoundingClientRect().width;
    select.style.width = set;
    const room = natural - Math.max(...options.map((o) => o.width));
    const cut = options.filter((o) => o.width + room > width + 0.5)
      .map((o) => ({ text: o.text, needs: Math.ceil(o.width + room), has: Math.floor(width) }));
    return { id: select.id, selected: select.selectedOptions[0] ? select.selectedOptions[0].text : null, cut };
  });
}
"""


async def open_page(portal: Portal, browsers: Browsers, path: str, screen: str) -> Page:
    """``path`` on ``screen``, as the administrator for the pages only administrators see, else as ``WHO``."""
    who = ADMIN if path.startswith(("/apps", "/consents")) else WHO
    return await browsers.sign_in(portal, who, path, viewport=SCREENS[screen])


async def lines_of(page: Page, pattern: str) -> list[dict[str, Any]]:
    """Each visible occurrence of ``pattern`` on the page: {"text", "lines", "in"} (see ``LINES_JS``)."""
    found: list[dict[str, Any]] = await page.evaluate(LINES_JS, pattern)
    return found


def broken_inside(found: list[dict[str, Any]], separators: str) -> list[dict[str, Any]]:
    """The occurrences with a line that ends other than after one of ``separators``."""
    return [f for f in found if any(not line.endswith(tuple(separators)) for line in f["lines"][:-1])]


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("path", WITH_GUIDS)
async def test_guids_wrap_only_at_their_hyphens(portal: Portal, browsers: Browsers, path: str, screen: str) -> None:
    """A GUID (a permission's, an app's, a tenant's id) is on one line, or breaks after a hyphen: never inside one
    of its groups of hex digits."""
    page = await open_page(portal, browsers, path, screen)
    await screenshot(page, f"test_guids_wrap_only_at_their_hyphens-{artifact_name(path)}-{screen}")
    found = await lines_of(page, GUID)
    ids = [text for text in await page.locator("span.id, td.id").all_text_contents() if len(text) == 36]
    assert ids, f"no id shown on {path}"
    assert set(ids) <= {f["text"] for f in found}, (ids, found)
    assert not broken_inside(found, "-"), broken_inside(found, "-")


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("path", WITH_ADDRESSES)
async def test_user_names_wrap_only_after_their_separators(
    portal: Portal, browsers: Browsers, path: str, screen: str
) -> None:
    """A user name or e-mail address (pradeep@contoso.example) is on one line, or breaks after its @, a dot or a
    hyphen: never inside a word."""
    page = await open_page(portal, browsers, path, screen)
    await screenshot(page, f"test_user_names_wrap_only_after_their_separators-{artifact_name(path)}-{screen}")
    found = await lines_of(page, ADDRESS)
    assert found, f"no user name shown on {path}"
    if path == "/people":
        names = await page.locator(".person .upn").all_text_contents()
        assert len(names) >= 10
        assert set(names) <= {f["text"] for f in found}, (names, found)
    assert not broken_inside(found, "@.-"), broken_inside(found, "@.-")


@pytest.mark.parametrize("screen", SCREENS)
@pytest.mark.parametrize("path", WITH_SELECTS)
async def test_selects_show_each_choice_whole(portal: Portal, browsers: Browsers, path: str, screen: str) -> None:
    """Whichever option of a select is chosen, its text fits in the select: none is cut off."""
    page = await open_page(portal, browsers, path, screen)
    await screenshot(page, f"test_selects_show_each_choice_whole-{artifact_name(path)}-{screen}")
    selects = await page.evaluate(CUT_OPTIONS_JS)
    assert len(selects) >= 5, selects
    cut = {s["id"]: s["cut"] for s in selects if s["cut"]}
    assert not cut, f"options cut off on {path}: {cut}"
