"""Profile photos in the portal: a photo set through Graph shows on People and on My presence; a person
without one keeps their initials."""

from __future__ import annotations

import struct
import zlib

import httpx
import pytest
from playwright.async_api import expect

from tests.browser.browser_support import Browsers, Portal, screenshot

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x60\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def test_a_photo_shows_on_people_and_my_presence_and_initials_stay_otherwise(
    portal: Portal, browsers: Browsers
) -> None:
    token = portal.server.cli("token", "--user", portal.upn("johanna"), "--scopes", "User.ReadWrite").strip()
    async with httpx.AsyncClient(base_url=portal.url) as http:
        response = await http.put(
            "/v1.0/me/photo/$value", content=_png(64, 64), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text

    page = await browsers.sign_in(portal, "diego", "/people")
    johanna = page.locator(f'#people li[data-user-id="{portal.user_id("johanna")}"] .avatar img')
    await expect(johanna).to_have_count(1)
    await expect(johanna).to_have_js_property("complete", True)
    assert await johanna.evaluate("img => img.naturalWidth") == 64
    diego = page.locator(f'#people li[data-user-id="{portal.user_id("diego")}"] .avatar')
    await expect(diego.locator("img")).to_have_count(0)
    await expect(diego).to_contain_text("DS")
    await screenshot(page, "test_a_photo_shows_on_people-1-people")

    mine = await browsers.sign_in(portal, "johanna", "/me")
    image = mine.locator("#my-presence .avatar img")
    await expect(image).to_have_count(1)
    await expect(image).to_have_js_property("complete", True)
    assert await image.evaluate("img => img.naturalWidth") == 64
