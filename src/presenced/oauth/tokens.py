"""Access tokens: minting (for scripting and, later, the sign-in platform) and verification.

Verification follows spec §A.4: RS256 signature against our own keys,
``exp``/``nbf`` with 60 s leeway, ``aud`` one of Graph's two identifiers,
``iss`` our issuer for the token's ``tid``, and a tenant that exists. Tokens
live on real time, never on the emulator's manual clock (§A.11).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, DecodeError, InvalidKeyIdError, JoseError

from presenced.auth.permissions import GRAPH_AUDIENCES
from presenced.auth.principal import Principal
from presenced.errors import InvalidAuthenticationToken
from presenced.oauth.keys import SigningKeys

LEEWAY = timedelta(seconds=60)
DEFAULT_LIFETIME = timedelta(hours=1)
AUDIENCE = "https://graph.microsoft.com"


def issuer(base_url: str, tenant_id: str) -> str:
    """The issuer of this server's tokens for one tenant."""
    return f"{base_url}/{tenant_id}/v2.0"


def mint_access_token(
    keys: SigningKeys,
    base_url: str,
    tenant_id: str,
    *,
    app_id: str,
    now: datetime,
    user_id: str | None = None,
    user_principal_name: str | None = None,
    name: str | None = None,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> str:
    """A signed Graph access token: delegated when ``user_id`` is given, else app-only."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "aud": AUDIENCE,
        "iss": issuer(base_url, tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "tid": tenant_id,
        "appid": app_id,
        "azp": app_id,
        "uti": uuid.uuid4().hex,
        "ver": "2.0",
    }
    if user_id is not None:
        claims.update(oid=user_id, sub=user_id, scp=" ".join(scopes), idtyp="user")
        if user_principal_name:
            claims.update(upn=user_principal_name, preferred_username=user_principal_name)
        if name:
            claims["name"] = name
    else:
        claims.update(oid=app_id, sub=app_id, roles=list(roles), idtyp="app")
    header = {"alg": "RS256", "typ": "JWT", "kid": keys.current.kid}
    return jwt.encode(header, claims, keys.current)


class TokenVerifier:
    """Turns a bearer token into a ``Principal``, or raises ``InvalidAuthenticationToken``.

    Verified tokens are cached, at most ``cache_size`` of them (oldest out
    first), and never used past their expiry. A tenant removed while a token of it is cached
    stays visible to that token until the token expires (at most its lifetime).
    """

    def __init__(
        self,
        keys: SigningKeys,
        base_url: str,
        tenant_exists: Callable[[str], Awaitable[bool]],
        cache_size: int = 10_000,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = keys
        self._base_url = base_url
        self._tenant_exists = tenant_exists
        # token → (principal, instant from which the token is no longer accepted)
        self._cache: OrderedDict[str, tuple[Principal, datetime]] = OrderedDict()
        self._cache_size = cache_size
        self._now = now

    async def verify(self, token: str) -> Principal:
        now = self._now()
        cached = self._cache.get(token)
        if cached is not None:
            if now < cached[1]:
                return cached[0]
            del self._cache[token]
        principal = await self._verify(token, now)
        self._cache[token] = (principal, principal.expires_at + LEEWAY)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str, now: datetime) -> Principal:
        claims = self._verified_claims(token)
        expires = _instant(claims, "exp")
        if now >= expires + LEEWAY:
            raise InvalidAuthenticationToken("Lifetime validation failed, the token is expired.")
        if "nbf" in claims and now + LEEWAY < _instant(claims, "nbf"):
            raise InvalidAuthenticationToken("Lifetime validation failed, the token is not yet valid.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a in GRAPH_AUDIENCES for a in audiences):
            raise InvalidAuthenticationToken("Invalid audience.")
        tenant_id = _guid_claim(claims, "tid")
        if claims.get("iss") != issuer(self._base_url, tenant_id):
            raise InvalidAuthenticationToken("Invalid issuer.")
        if not await self._tenant_exists(tenant_id):
            raise InvalidAuthenticationToken(f"Tenant '{tenant_id}' does not exist.")
        app_id = _guid_claim(claims, "appid" if "appid" in claims else "azp")
        if "scp" in claims:
            scopes = claims["scp"]
            if not isinstance(scopes, str):
                raise InvalidAuthenticationToken("Access token claim 'scp' must be a string.")
            return Principal(
                tenant_id=tenant_id,
                app_id=app_id,
                expires_at=expires,
                user_id=_guid_claim(claims, "oid"),
                scopes=frozenset(scopes.split()),
            )
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidAuthenticationToken("Access token claim 'roles' must be a list of strings.")
        return Principal(tenant_id=tenant_id, app_id=app_id, expires_at=expires, roles=frozenset(roles))

    def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self._keys.key_set, algorithms=["RS256"])
        except InvalidKeyIdError:
            raise InvalidAuthenticationToken("Access token is signed with an unknown key.") from None
        except BadSignatureError:
            raise InvalidAuthenticationToken("Access token signature is invalid.") from None
        except (DecodeError, JoseError, ValueError, TypeError):
            raise InvalidAuthenticationToken("Access token is malformed: not a signed JWT.") from None
        return dict(decoded.claims)


#: Claims beyond this (the year 9000) are refused: adding the leeway must not overflow.
_LATEST_TIMESTAMP = 221_845_392_000


def _instant(claims: dict[str, Any], name: str) -> datetime:
    value = claims.get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidAuthenticationToken(f"Access token claim '{name}' is missing or not a number.")
    if not 0 <= value < _LATEST_TIMESTAMP:
        raise InvalidAuthenticationToken(f"Access token claim '{name}' is out of range.")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InvalidAuthenticationToken(f"Access token claim '{name}' is out of range.") from None


def _guid_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) and len(value) == 36 else _bad(name)
    except ValueError:
        return _bad(name)


def _bad(name: str) -> str:
    raise InvalidAuthenticationToken(f"Access token claim '{name}' is missing or not a GUID.")
