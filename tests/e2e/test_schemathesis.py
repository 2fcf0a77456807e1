"""The OpenAPI document against the running service, by schemathesis: every operation, generated inputs
(coverage and fuzzing phases) and the document's links followed (stateful phase), as an administrator
with a delegated token and as an app with an app-only token. Any 5xx, or an answer the document does not
describe (status, content type, body schema), fails the test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from presenced.services.demo import DEMO_DAEMON_APP_ID
from tests.e2e.server_process import ServerProcess, running_server

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"
DELEGATED = (
    "Presence.ReadWrite Presence.Read.All MailboxSettings.ReadWrite User.Read Application.ReadWrite.All "
    "User.ReadWrite.All DelegatedPermissionGrant.ReadWrite.All AppRoleAssignment.ReadWrite.All"
)
APPLICATION = (
    "Presence.ReadWrite.All Presence.Read.All MailboxSettings.ReadWrite Application.ReadWrite.All "
    "User.ReadWrite.All DelegatedPermissionGrant.ReadWrite.All AppRoleAssignment.ReadWrite.All"
)


@pytest.fixture
def server(tmp_path: Path, key_folder: Path) -> Iterator[ServerProcess]:
    """A server of its own for each run: a run deletes and changes what it finds (apps, users, grants)."""
    with running_server(tmp_path / "data", key_folder=key_folder) as running:
        yield running


@pytest.mark.parametrize(
    ("who", "seed"),
    [
        (("--user", "adele@contoso.example", "--scopes", DELEGATED), 1),
        (("--app", DEMO_DAEMON_APP_ID, "--roles", APPLICATION), 2),
    ],
    ids=["administrator, delegated", "app-only"],
)
def test_every_operation_answers_as_the_document_says(server: ServerProcess, who: tuple[str, ...], seed: int) -> None:
    token = server.cli("token", *who).strip()
    run = subprocess.run(
        [
            str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
            "-H", f"Authorization: Bearer {token}",
            "--tls-verify", str(server.bundle),
            "--checks", CHECKS,
            "--max-examples", "10",
            "--seed", str(seed),
            "--workers", "1",
            "--no-color",
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    summary = run.stdout[-4000:]
    # What failed first, then the totals (the list of operations in between can be long).
    failures = run.stdout[run.stdout.find("FAILURES") :][:6000] if "FAILURES" in run.stdout else ""
    assert run.returncode == 0, failures + "\n...\n" + summary[-1500:]
    cases = summary.split("Test cases:")[-1]
    assert " passed" in cases, summary
    assert "failed" not in cases, summary
    assert "Traceback" not in server.log(), server.log()[-3000:]
