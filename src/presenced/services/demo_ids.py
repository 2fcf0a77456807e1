"""The demo tenant's fixed ids: the same on every machine (``presenced.services.demo`` seeds it).

Apart from the seeding, so that a command that only needs an id (``presenced token``'s default
tenant) does not load the rest.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("5b0c3f3e-7d1a-4c52-9a53-2f7e0f6d1c11")
DEMO_TENANT_ID = str(uuid.uuid5(NAMESPACE, "tenant"))
DEMO_DOMAIN = "contoso.example"
#: The application the demo's presence sessions belong to.
DEMO_APP_ID = str(uuid.uuid5(NAMESPACE, "app:teams-demo"))
#: The confidential (daemon) app: a client secret and admin-consented application permissions.
DEMO_DAEMON_APP_ID = str(uuid.uuid5(NAMESPACE, "app:daemon"))
#: The public client: device code and authorization code with PKCE, delegated permissions users consent to.
DEMO_PUBLIC_APP_ID = str(uuid.uuid5(NAMESPACE, "app:public"))
DEMO_ADMIN = "adele"


def demo_user_id(nickname: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"user:{nickname}"))
