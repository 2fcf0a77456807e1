"""What the HTTP adapters (the Graph API and the portal) are given: the services, typed, in one object.

``presenced.app.create_app`` builds it and puts it on the application; a handler asks ``services_of``
for it. Nothing else reads the application's state, so every use is type-checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.requests import HTTPConnection

from presenced.auth.operations import Access
from presenced.oauth.keys import SigningKeys
from presenced.oauth.server import AuthorizationServer
from presenced.oauth.signin import SignIn
from presenced.oauth.tokens import TokenVerifier
from presenced.services.actions import PresenceActions
from presenced.services.consents import Consents
from presenced.services.directory import DirectoryService
from presenced.services.emulator import EmulatorClock
from presenced.services.faults import Faults
from presenced.services.feed import ChangeFeed
from presenced.services.health import Health
from presenced.services.history import PresenceHistory
from presenced.services.identity import IdentityService
from presenced.services.mailbox import MailboxService
from presenced.services.ports import ChangeLog
from presenced.services.presence import PresenceService, PresenceView
from presenced.services.scenarios import Scenarios
from presenced.services.subscriptions import SubscriptionService
from presenced.services.throttle import Throttle


class PresenceEncoding(Protocol):
    """The Graph API's encoder of presences (``api.wire.PresenceEncoder``), whose cache is per application."""

    def one(self, view: PresenceView, context: str) -> bytes: ...
    def collection(self, views: list[PresenceView], context: str) -> bytes: ...


class GraphEndpoint(Protocol):
    """What the portal's explorer reads of an endpoint of the API's route table (``api.endpoints``)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def operation_id(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def versioned(self) -> bool: ...
    @property
    def access(self) -> tuple[Access, ...]: ...
    @property
    def response_body(self) -> type | None: ...
    @property
    def delegated_only(self) -> bool: ...
    def paths(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Services:
    #: The public URL without a trailing slash: the base of ``@odata.context`` and of the sign-in endpoints.
    base_url: str
    presence: PresenceService
    actions: PresenceActions
    mailbox: MailboxService
    #: The manual clock's controls; None on real time.
    emulator: EmulatorClock | None
    verifier: TokenVerifier
    keys: SigningKeys
    oauth: AuthorizationServer
    signin: SignIn
    identity: IdentityService
    directory: DirectoryService
    consents: Consents
    subscriptions: SubscriptionService
    feed: ChangeFeed
    #: Presence history and last seen (docs/graph-api.md, "Presence history and last seen").
    history: PresenceHistory
    change_log: ChangeLog
    #: The local CA's certificate, served at /tls/ca.pem; None with certificates of one's own.
    ca_certificate: Path | None
    encoder: PresenceEncoding
    #: The Graph API's route table, which the permissions explorer describes.
    endpoints: Sequence[GraphEndpoint]
    #: Readiness (``/health/ready``).
    health: Health
    #: Graph's throttling of applications (docs/graph-api.md, "Throttling"); None when off.
    throttle: Throttle | None = None
    #: The emulator's fault rules (docs/emulator.md, "Faults"); None off the emulator.
    faults: Faults | None = None
    #: The emulator's scenario player (docs/emulator.md, "Scenarios"); None without the manual clock.
    scenarios: Scenarios | None = None


def install(app: Any, services: Services) -> None:
    """Give the application (a Starlette app) its services."""
    app.state.services = services


def installed(app: Any) -> Services:
    """The services of an application ``install`` was given them."""
    found: Services = app.state.services
    return found


def services_of(connection: HTTPConnection) -> Services:
    """The services of the application a request (or stream) came to."""
    return installed(connection.app)
