"""The identity platform's errors: an OAuth ``error`` plus an AADSTS code, as Entra answers."""

from __future__ import annotations

from presenced.errors import PresencedError


class OAuthError(PresencedError):
    """A refusal at the token, device or authorize endpoint (docs/identity.md, "Endpoints")."""

    def __init__(
        self,
        error: str,
        aadsts: int,
        description: str,
        *,
        status: int = 400,
        suberror: str | None = None,
    ) -> None:
        super().__init__(f"AADSTS{aadsts}: {description}", status=status, code=error)
        #: OAuth's ``error`` (also the wire ``code``) and Entra's number for the reason.
        self.error = error
        self.aadsts = aadsts
        self.description = description
        self.suberror = suberror
        #: At the authorize endpoint: the checked redirect URI the error goes back to, and how.
        #: None while the client or the redirect URI itself is in doubt: then a page says it.
        self.redirect_uri: str | None = None
        self.response_mode = "query"


def missing_parameter(name: str) -> OAuthError:
    return OAuthError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def invalid_scope(description: str) -> OAuthError:
    return OAuthError("invalid_scope", 70011, description)


def consent_required(app_id: str, app_name: str) -> OAuthError:
    return OAuthError(
        "invalid_grant",
        65001,
        f"The user or administrator has not consented to use the application with ID '{app_id}' named "
        f"'{app_name}'. Send an interactive authorization request for this user and resource.",
        suberror="consent_required",
    )
