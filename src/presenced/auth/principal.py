"""Who is calling: the verified identity a bearer token carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller.

    A delegated (user) principal has ``user_id`` and ``scopes``; an application
    principal has no user and carries ``roles``.
    """

    tenant_id: str
    app_id: str
    expires_at: datetime
    user_id: str | None = None
    scopes: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    #: The signed-in user holds an administrator role in the tenant (the token's ``wids``).
    directory_admin: bool = False

    @property
    def is_delegated(self) -> bool:
        return self.user_id is not None

    def is_self(self, user_id: str) -> bool:
        """Whether ``user_id`` is the signed-in user of a delegated token."""
        return self.user_id is not None and self.user_id == user_id.lower()
