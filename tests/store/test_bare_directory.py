"""The bare-driver directory lookups (``presenced token``'s) answer as the identity store does."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from presenced.bootstrap import Runtime
from presenced.store.bare_directory import MIGRATIONS, BareDirectory, newest_revision
from presenced.store.engine import sqlite_url
from tests.oauth.identity_support import register_app, seed_world, upn


def _url(runtime: Runtime) -> str:
    return runtime.settings.database_url or sqlite_url(runtime.settings.data_dir)


def test_the_newest_revision_is_alembics_head() -> None:
    """Read from the migration files without Alembic, the head is the one Alembic migrates to."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS.parent))
    assert newest_revision() == ScriptDirectory.from_config(config).get_current_head()


async def test_the_lookups_answer_as_the_identity_store_does(runtime: Runtime) -> None:
    """Tenant, account (by UPN in any case, by id), application with its secrets, service principal."""
    world = await seed_world(runtime)
    app = await register_app(runtime, world.tenant_id, "Bare Lookup Daemon")
    await runtime.identity.add_password(app, "ci", datetime.now(UTC))
    store = runtime.identity_store
    directory = await BareDirectory.open(_url(runtime))
    assert directory is not None
    try:
        assert await directory.tenant_exists(world.tenant_id.upper())
        assert not await directory.tenant_exists("11111111-1111-1111-1111-111111111111")
        for ref in (upn("adele").upper(), world.user_id("adele")):
            assert await directory.find_account(world.tenant_id, ref) == await store.find_account(world.tenant_id, ref)
        assert await directory.find_account(world.tenant_id, "nobody@contoso.example") is None
        assert await directory.find_account(world.tenant_id, "adele\x00@contoso.example") is None
        found = await directory.find_application(app.app_id.upper())
        assert found == await store.find_application(app.app_id)
        assert found is not None
        assert len(found.secrets) == 1
        assert await directory.find_service_principal(world.tenant_id, app.app_id) == (
            await store.find_service_principal(world.tenant_id, app.app_id)
        )
        assert await directory.find_application("0f9b2b84-1d2c-4c47-a8f1-3f5b9f3c2f10") is None
    finally:
        await directory.close()


async def test_a_database_not_at_the_newest_schema_is_not_read(tmp_path: Path) -> None:
    """No database, an empty one, or one at an older migration: ``open`` answers None (the caller migrates)."""
    path = tmp_path / "presenced.db"
    assert await BareDirectory.open(f"sqlite:///{path}") is None
    sqlite3.connect(path).close()
    assert await BareDirectory.open(f"sqlite:///{path}") is None
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0004')")
    assert await BareDirectory.open(f"sqlite:///{path}") is None
