"""Helpers of the portal page tests: signing in through /signin, the CSRF token, what a page shows."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.oauth.identity_support import World, upn


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, f"no CSRF field on the page ({page.status_code}): {page.text[:300]}"
    return found.group(1)


async def portal_sign_in(browser: httpx.AsyncClient, world: World, nickname: str, target: str = "/me") -> str:
    """Sign a demo user in through the portal's sign-in page; the CSRF token of their forms."""
    form = await browser.get(f"/signin?next={target}")
    response = await browser.post(
        f"/signin?next={target}",
        data={"csrf": csrf_of(form), "username": upn(nickname), "password": world.password(nickname)},
    )
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"] == target
    return csrf_of(await browser.get(target))


def text_of(page: httpx.Response, element_id: str) -> str:
    """The text of the element with this id (tags stripped, whitespace collapsed)."""
    found = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', page.text, re.S)
    assert found, f"no #{element_id} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def page_error(page: httpx.Response) -> str:
    return text_of(page, "page-error")
