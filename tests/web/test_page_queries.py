"""What the portal's app page and Granted permissions page cost: SQL statements per page, on SQLite.

Each page reads what it shows once per section and passes the results down, so the count does not
grow with the number of permissions, grants or apps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import event

from presenced.bootstrap import Runtime
from presenced.services.identity import GRAPH
from tests.oauth.identity_support import World
from tests.web.portal_support import portal_sign_in


@pytest.fixture
def database_url() -> None:
    """SQLite only: the count is of the statements the store sends, the same on both stores."""
    return


@contextmanager
def counted(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements run while the block runs (transaction control left out, and the directory's version,
    which a process reads at most once a second to know its cached lookups are current: docs/identity.md,
    "What each process keeps")."""
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.split(None, 1)[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK"}:
            return
        if "FROM identity_version" not in statement:
            statements.append(statement)

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def user_consent(runtime: Runtime, world: World, nickname: str) -> None:
    """The user consents to the demo desktop app for themselves, as at sign-in."""
    await runtime.identity.consent_for_user(
        world.tenant_id, world.public, GRAPH, world.user_id(nickname), {"Presence.Read"}, datetime.now(UTC),
        granted_by=world.user_id(nickname),
    )  # fmt: skip


def report(statements: list[str]) -> str:
    return "\n".join(" ".join(s.split())[:160] for s in statements)


async def test_an_apps_page_reads_each_section_once(browser: httpx.AsyncClient, runtime: Runtime, world: World) -> None:
    """The app page of the demo daemon (granted application permissions, a secret): at most 7 statements —
    the session, the app with its secrets, the tenant, the service principal, its grants and its assignments."""
    await portal_sign_in(browser, world, "adele", "/apps")
    path = f"/apps/{world.daemon.app_id}"
    assert (await browser.get(path)).status_code == 200
    with counted(runtime) as statements:
        page = await browser.get(path)
    assert page.status_code == 200
    assert "Granted for Contoso (demo)" in page.text
    assert len(statements) <= 7, report(statements)


async def test_the_consents_page_reads_each_section_once(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """/consents for an administrator, with a user's consent and the demo's admin consent: at most 6 statements —
    the session, the tenant, the grants, the assignments, the users and the service principals (which also say
    which apps are registered here)."""
    await user_consent(runtime, world, "megan")
    await portal_sign_in(browser, world, "adele", "/consents")
    assert (await browser.get("/consents")).status_code == 200
    with counted(runtime) as statements:
        page = await browser.get("/consents")
    assert page.status_code == 200
    assert "Presence Desktop (demo)" in page.text
    assert len(statements) <= 6, report(statements)


async def test_my_consents_page_reads_each_section_once(
    browser: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """/consents for a person who is not an administrator: at most 4 statements — the session, the tenant,
    their grants and the service principals (the person is the one who granted them)."""
    await user_consent(runtime, world, "megan")
    await portal_sign_in(browser, world, "megan", "/consents")
    with counted(runtime) as statements:
        page = await browser.get("/consents")
    assert page.status_code == 200
    assert "Presence Desktop (demo)" in page.text
    assert len(statements) <= 4, report(statements)
