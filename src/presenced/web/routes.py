"""The identity platform's routes and the portal's pages."""

from __future__ import annotations

from starlette.routing import Route

from presenced.web import apps, explorer, me
from presenced.web.endpoints import ca_certificate, devicecode, error_page, home, jwks, openid_configuration, token
from presenced.web.people import people, person_page, person_photo
from presenced.web.portal import signin_page, signout, static_file
from presenced.web.signin import admin_consent, authorize, devicelogin, logout

ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/static/{name}", static_file, methods=["GET"]),
    Route("/signin", signin_page, methods=["GET", "POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/people", people, methods=["GET"]),
    Route("/people/{id}", person_page, methods=["GET"]),
    Route("/people/{id}/photo", person_photo, methods=["GET"]),
    *me.ROUTES,
    *apps.ROUTES,
    *explorer.ROUTES,
    Route("/tls/ca.pem", ca_certificate, methods=["GET"]),
    Route("/error", error_page, methods=["GET"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", jwks, methods=["GET"]),
    Route("/{tenant}/discovery/keys", jwks, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
    Route("/{tenant}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
    Route("/{tenant}/adminconsent", admin_consent, methods=["GET", "POST"]),
    Route("/{tenant}/v2.0/adminconsent", admin_consent, methods=["GET", "POST"]),
    Route("/devicelogin", devicelogin, methods=["GET", "POST"]),
]
