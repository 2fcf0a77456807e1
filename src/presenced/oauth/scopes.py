"""Entra's scope syntax (docs/identity.md, "Endpoints").

``https://graph.microsoft.com/Presence.Read``, its GUID form and a bare
``Presence.Read`` all name Graph's permission; ``{resource}/.default`` means
"everything granted"; ``openid profile email offline_access`` are OpenID scopes
of no resource. One token request targets one resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from presenced.auth.permissions import GRAPH_APP_ID, GRAPH_RESOURCE, OPENID_SCOPES
from presenced.oauth.errors import OAuthError, invalid_scope

DEFAULT = ".default"


@dataclass(frozen=True, slots=True)
class ScopeRequest:
    #: The resource as the request named it (``https://graph.microsoft.com``, a GUID, ``api://…``), or None
    #: when only OpenID scopes were asked for.
    resource: str | None
    permissions: tuple[str, ...]
    default: bool
    openid: frozenset[str]

    @property
    def is_graph(self) -> bool:
        return self.resource is None or self.resource.lower() in {GRAPH_RESOURCE, GRAPH_APP_ID}

    @property
    def audience(self) -> str:
        """The ``aud`` of the token: the identifier the client used (Graph: URL or GUID, as asked)."""
        if self.resource is None:
            return GRAPH_RESOURCE
        return GRAPH_APP_ID if self.resource.lower() == GRAPH_APP_ID else self.resource

    def qualified(self, value: str) -> str:
        """A permission as the token response's ``scope`` shows it: short for Graph, else prefixed."""
        return value if self.is_graph else f"{self.resource}/{value}"


@lru_cache(maxsize=512)
def parse_scopes(raw: str) -> ScopeRequest:
    """Split a ``scope`` parameter; an unusable one raises ``OAuthError`` (invalid_scope). Clients send the same
    few again and again: the last answers are kept (a ``ScopeRequest`` cannot change)."""
    if "\x00" in raw or len(raw) > 4096:
        raise invalid_scope("The provided value for the input parameter 'scope' is not valid.")
    resources: dict[str, str] = {}
    permissions: list[str] = []
    openid: set[str] = set()
    default = False
    for item in raw.split():
        if item in OPENID_SCOPES:
            openid.add(item)
            continue
        resource, value = _split(item)
        resources.setdefault(resource.rstrip("/").lower(), resource.rstrip("/"))
        if value == DEFAULT:
            default = True
        elif value:
            permissions.append(value)
        else:
            raise invalid_scope(
                f"The provided value for the input parameter 'scope' is not valid. The scope '{item}' is not valid."
            )
    if len(resources) > 1:
        raise OAuthError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one resource. "
            f"Scope {raw} is not valid.",
        )
    if default and permissions:
        raise invalid_scope(
            f"The provided value for the input parameter 'scope' is not valid. The scope '{raw}' is not valid: "
            "/.default cannot be combined with other scopes of the same resource."
        )
    named = next(iter(resources.values()), None)
    return ScopeRequest(named, tuple(dict.fromkeys(permissions)), default, frozenset(openid))


def _split(item: str) -> tuple[str, str]:
    """(resource, permission) of one scope; a bare name or ``.default`` is Graph's."""
    if item == DEFAULT:
        return GRAPH_RESOURCE, DEFAULT
    if "/" not in item:
        return GRAPH_RESOURCE, item
    resource, _, value = item.rpartition("/")
    if resource.lower().rstrip("/") in {GRAPH_RESOURCE, GRAPH_APP_ID}:
        resource = GRAPH_RESOURCE if resource.lower().startswith("https") else GRAPH_APP_ID
    return resource, value
