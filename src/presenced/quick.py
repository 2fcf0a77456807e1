"""Composition for the one command that must start at once (``presenced token``): the directory read
straight through the bare database driver, without the runtime that ``bootstrap`` builds (its
engine, migrations and services take about a second to import and open).

Like ``bootstrap``, this is a place where the store is chosen; nothing above reaches the store.
"""

from __future__ import annotations

from presenced.store.bare_directory import BareDirectory

__all__ = ["BareDirectory", "open_directory"]


async def open_directory(url: str) -> BareDirectory | None:
    """The directory of the database at ``url``; None if it is new or an earlier version wrote it
    (migrate it first)."""
    return await BareDirectory.open(url)
