"""The scenarios shipped in docs/scenarios/ play against a real emulator process, from the command line and
over HTTP, and the reads they promise come out of Graph's endpoints afterwards."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server_process import ServerProcess, running_server
from tests.e2e.test_fault_rules import daemon_client

SCENARIOS = Path(__file__).resolve().parents[2] / "docs" / "scenarios"


@pytest.fixture
def emulator(tmp_path: Path, key_folder: Path) -> Iterator[ServerProcess]:
    with running_server(tmp_path / "data", "--clock", "manual", key_folder=key_folder) as server:
        yield server


def test_the_working_day_plays_from_the_command_line(emulator: ServerProcess) -> None:
    with daemon_client(emulator) as http:
        adele = http.get("/v1.0/users/adele@contoso.example/presence")
        assert adele.status_code == 200
        printed = emulator.cli("scenario", "run", str(SCENARIOS / "working-day.yaml")).splitlines()
        assert printed[0].startswith("A working day: started at ")
        assert printed[-1] == "passed"
        steps = printed[1:-1]
        assert len(steps) == 12
        assert all(" ok " in line for line in steps), printed
        assert "expected Busy/InACall, read Busy/InACall" in steps[3]
        assert "expected Away/Away, read Away/Away" in steps[5]
        # What the last step expected, Graph reads: the server and the command line share the clock and data.
        evening = http.get("/v1.0/users/adele@contoso.example/presence").json()
        assert (evening["availability"], evening["activity"]) == ("Offline", "Offline")


def test_the_outage_plays_over_http_and_graph_fails_as_it_says_until_cleared(emulator: ServerProcess) -> None:
    with daemon_client(emulator) as http:
        alex = emulator.demo().user("alex")["id"]
        played = http.post(
            "/_emulator/scenarios",
            content=(SCENARIOS / "outage.yaml").read_bytes(),
            headers={"Content-Type": "application/yaml"},
        )
        assert played.status_code == 200, played.text
        assert played.json()["passed"] is True
        bulk = [http.post("/v1.0/communications/getPresencesByUserId", json={"ids": [alex]}) for _ in range(3)]
        assert [r.status_code for r in bulk] == [503, 503, 200]
        assert bulk[0].headers["Retry-After"] == "5"
        assert bulk[0].json()["error"]["code"] == "ServiceUnavailable"
        # The seeded rule throttles the same reads on every run: those its dice pick, in order.
        dice = random.Random(7)
        expected = [429 if dice.random() < 0.5 else 200 for _ in range(8)]
        reads = [http.get(f"/v1.0/users/{alex}/presence") for _ in range(8)]
        assert [r.status_code for r in reads] == expected
        assert 429 in expected
        assert 200 in expected
        served = next(r for r in reads if r.status_code == 200).json()
        assert (served["availability"], served["activity"]) == ("DoNotDisturb", "Presenting")
        assert emulator.cli("faults", "clear").strip() == "removed 2 fault rules"
        assert {http.get(f"/v1.0/users/{alex}/presence").status_code for _ in range(4)} == {200}


def test_a_failed_step_exits_1_and_a_bad_file_exits_2(emulator: ServerProcess, tmp_path: Path) -> None:
    failing = tmp_path / "failing.json"
    failing.write_text('{"name": "f", "steps": [{"at": "PT0S", "expect": {"user": "adele@contoso.example", '
                       '"availability": "Offline"}}]}')  # fmt: skip
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  - at: later\n")

    def run(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "presenced", "scenario", "run", str(path), "--data-dir", str(emulator.data_dir)],
            capture_output=True, text=True, timeout=60, env=emulator.env, check=False,
        )  # fmt: skip

    failed = run(failing)
    assert failed.returncode == 1
    assert "FAIL adele@contoso.example: expected Offline, read Available/Available" in failed.stdout
    assert failed.stdout.splitlines()[-1] == "failed"
    refused = run(bad)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "step 1 (at later)" in refused.stderr
