"""The probes for orchestrators and load balancers (docs/deployment.md, "Health checks"), without a token.

- ``GET /health/live`` (and ``GET /health``): the process answers; nothing else is looked at.
- ``GET /health/ready``: each check of ``services.health`` with its state; 200 when none fails, else 503.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from presenced.services.health import Check
from presenced.wiring import services_of

#: Probes' answers are about this moment: no cache may keep them.
_HEADERS = {"Cache-Control": "no-store"}


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers=_HEADERS)


async def ready(request: Request) -> Response:
    readiness = await services_of(request).health.ready()
    body = {
        "status": "ok" if readiness.ready else "failing",
        "checks": {name: _check(check) for name, check in readiness.checks.items()},
    }
    return JSONResponse(body, status_code=200 if readiness.ready else 503, headers=_HEADERS)


def _check(check: Check) -> dict[str, Any]:
    body: dict[str, Any] = {"status": check.status}
    if check.reason is not None:
        body["reason"] = check.reason
    if check.seconds_since_sweep is not None:
        body["secondsSinceLastSweep"] = check.seconds_since_sweep
    return body


ROUTES = [
    Route("/health", live, methods=["GET"]),
    Route("/health/live", live, methods=["GET"]),
    Route("/health/ready", ready, methods=["GET"]),
]
