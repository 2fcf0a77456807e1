"""Access tokens: minting (for the token endpoint and ``presenced token``) and verification.

Verification (docs/tokens.md): RS256 signature against our own keys,
``exp``/``nbf`` with 60 s leeway, ``aud`` one of Graph's two identifiers,
``iss`` our issuer for the token's ``tid``, and a tenant that exists. Tokens
live on real time, never on the emulator's manual clock (docs/emulator.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, DecodeError, InvalidKeyIdError, JoseError

from presenced.auth.permissions import GRAPH_AUDIENCES
from presenced.auth.principal import Principal
from presenced.clock import real_now
from presenced.errors import InvalidAuthenticationToken
from presenced.oauth.keys import SigningKeys

LEEWAY = timedelta(seconds=60)
#: How long a tenant's existence is remembered: a removed tenant's tokens not yet verified are
#: refused within this; tokens already verified live on to their expiry (as documented).
TENANT_TTL = timedelta(seconds=10)
DEFAULT_LIFETIME = timedelta(hours=1)
AUDIENCE = "https://graph.microsoft.com"
#: The role template id of Entra's Global Administrator, carried in ``wids`` by administrators' tokens.
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def unique_token_id() -> str:
    """A token's ``uti``: a random (version 4) UUID's 32 hex digits, as ``uuid.uuid4().hex`` makes them, for less."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    return raw.hex()


def issuer(base_url: str, tenant_id: str) -> str:
    """The issuer of this server's tokens for one tenant."""
    return f"{base_url}/{tenant_id}/v2.0"


def _signing(keys: SigningKeys) -> tuple[dict[str, Any], Any]:
    keys.refresh()
    return {"alg": "RS256", "typ": "JWT", "kid": keys.current.kid}, keys.current


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
    audience: str = AUDIENCE,
    app_display_name: str | None = None,
    directory_admin: bool = False,
    client_authenticated: bool = False,
    object_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed access token (for Graph unless ``audience`` says otherwise): delegated when ``user_id``
    is given, else app-only (``object_id``: the client's service principal)."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "aud": audience,
        "iss": issuer(base_url, tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "tid": tenant_id,
        "appid": app_id,
        "azp": app_id,
        "appidacr": "1" if client_authenticated else "0",
        "azpacr": "1" if client_authenticated else "0",
        "uti": unique_token_id(),
        "ver": "2.0",
    }
    if app_display_name:
        claims["app_displayname"] = app_display_name
    if user_id is not None:
        claims.update(oid=user_id, sub=user_id, scp=" ".join(scopes), idtyp="user")
        if user_principal_name:
            claims.update(
                upn=user_principal_name, unique_name=user_principal_name, preferred_username=user_principal_name
            )
        if name:
            claims["name"] = name
        if directory_admin:
            claims["wids"] = [GLOBAL_ADMINISTRATOR]
    else:
        principal = object_id or app_id
        claims.update(oid=principal, sub=principal, idtyp="app")
        if roles:  # Entra leaves the claim out of a token that carries no role
            claims["roles"] = list(roles)
    claims.update(extra or {})
    header, key = _signing(keys)
    return jwt.encode(header, claims, key)


def mint_id_token(
    keys: SigningKeys,
    base_url: str,
    tenant_id: str,
    *,
    client_id: str,
    user_id: str,
    user_principal_name: str,
    name: str,
    now: datetime,
    auth_time: datetime,
    nonce: str | None = None,
    email: bool = False,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> str:
    """An OpenID Connect ID token (v2.0) for ``client_id``."""
    issued = int(now.timestamp())
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": issuer(base_url, tenant_id),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "auth_time": int(auth_time.timestamp()),
        "tid": tenant_id,
        "oid": user_id,
        # Pairwise, as Entra's: the same user has a different sub in each app.
        "sub": pairwise_subject(user_id, client_id),
        "preferred_username": user_principal_name,
        "name": name,
        "uti": unique_token_id(),
        "ver": "2.0",
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if email:
        claims["email"] = user_principal_name
    header, key = _signing(keys)
    return jwt.encode(header, claims, key)


def pairwise_subject(user_id: str, client_id: str) -> str:
    raw = hashlib.sha256(f"{user_id}:{client_id}".encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_own_token(keys: SigningKeys, token: str) -> dict[str, Any]:
    """The claims of a token this server signed; ValueError if it is not one (no other check)."""
    try:
        return dict(jwt.decode(token, keys.key_set, algorithms=["RS256"]).claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None


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
        now: Callable[[], datetime] = real_now,
    ) -> None:
        self._keys = keys
        self._base_url = base_url
        self._tenant_exists = tenant_exists
        # tenant id → until when its existence is taken as known (positive answers only).
        self._tenants: dict[str, datetime] = {}
        # token → (principal, instant from which the token is no longer accepted, kid of its key)
        self._cache: OrderedDict[str, tuple[Principal, datetime, str | None]] = OrderedDict()
        self._cache_size = cache_size
        self._now = now

    async def verify(self, token: str) -> Principal:
        now = self._now()
        cached = self._cache.get(token)
        if cached is not None:
            # A cached token stays good until it expires, or until its key is retired.
            if now < cached[1] and self._keys.knows(cached[2]):
                return cached[0]
            del self._cache[token]
        principal, kid = await self._verify(token, now)
        self._cache[token] = (principal, principal.expires_at + LEEWAY, kid)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _verify(self, token: str, now: datetime) -> tuple[Principal, str | None]:
        self._keys.refresh()
        try:
            claims, kid = self._verified_claims(token)
        except InvalidKeyIdError:
            # Perhaps a key published since the last look: read the keys once more.
            await self._keys.reload()
            try:
                claims, kid = self._verified_claims(token)
            except InvalidKeyIdError:
                raise InvalidAuthenticationToken("Access token is signed with an unknown key.") from None
        return await self._principal(claims, now), kid

    async def _principal(self, claims: dict[str, Any], now: datetime) -> Principal:
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
        if not await self._known_tenant(tenant_id, now):
            raise InvalidAuthenticationToken(f"Tenant '{tenant_id}' does not exist.")
        app_id = _guid_claim(claims, "appid" if "appid" in claims else "azp")
        if "scp" in claims:
            scopes = claims["scp"]
            if not isinstance(scopes, str):
                raise InvalidAuthenticationToken("Access token claim 'scp' must be a string.")
            wids = claims.get("wids")
            return Principal(
                tenant_id=tenant_id,
                app_id=app_id,
                expires_at=expires,
                user_id=_guid_claim(claims, "oid"),
                scopes=frozenset(scopes.split()),
                directory_admin=isinstance(wids, list) and GLOBAL_ADMINISTRATOR in wids,
            )
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidAuthenticationToken("Access token claim 'roles' must be a list of strings.")
        return Principal(tenant_id=tenant_id, app_id=app_id, expires_at=expires, roles=frozenset(roles))

    async def _known_tenant(self, tenant_id: str, now: datetime) -> bool:
        """Whether the tenant exists; a yes is remembered for ``TENANT_TTL``, so a new token costs no query."""
        until = self._tenants.get(tenant_id)
        if until is not None and now < until:
            return True
        if not await self._tenant_exists(tenant_id):
            self._tenants.pop(tenant_id, None)
            return False
        if len(self._tenants) >= self._cache_size:
            self._tenants.clear()
        self._tenants[tenant_id] = now + TENANT_TTL
        return True

    def _verified_claims(self, token: str) -> tuple[dict[str, Any], str | None]:
        """The token's claims and kid if this process's keys verify it; ``InvalidKeyIdError`` if it names a key
        they do not hold."""
        try:
            decoded = jwt.decode(token, self._keys.key_set, algorithms=["RS256"])
        except InvalidKeyIdError:
            raise
        except BadSignatureError:
            raise InvalidAuthenticationToken("Access token signature is invalid.") from None
        except (DecodeError, JoseError, ValueError, TypeError):
            raise InvalidAuthenticationToken("Access token is malformed: not a signed JWT.") from None
        kid = decoded.header.get("kid")
        return dict(decoded.claims), kid if isinstance(kid, str) else None


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
