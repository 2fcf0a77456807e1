"""``/metrics`` on a real ``presenced serve``: on the main port by default, on ``--metrics-port`` alone when
given (plain HTTP), nowhere with ``--no-metrics``; never asking for a token."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from presenced.config import Settings
from presenced.errors import ConfigurationError
from tests.e2e.server_process import running_server
from tests.metrics_support import Scrape
from tests.support import stop_process

#: How long a process may take to start listening.
START_TIMEOUT = 60.0

HEALTH = {"route": "/health", "method": "GET", "status": "200"}


def _trusting(bundle: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(bundle))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_metrics_on_the_main_port_by_default(tmp_path: Path, key_folder: Path) -> None:
    with (
        running_server(tmp_path / "data", key_folder=key_folder) as server,
        httpx.Client(base_url=server.url, verify=_trusting(server.bundle)) as http,
    ):
        first = Scrape(http.get("/metrics").raise_for_status().text)
        for _ in range(3):
            http.get("/health").raise_for_status()
        second = Scrape(http.get("/metrics").raise_for_status().text)
    assert (
        second.value("presenced_http_requests_total", **HEALTH) - first.value("presenced_http_requests_total", **HEALTH)
        == 3
    )
    assert "process_resident_memory_bytes" in second.names


def test_metrics_port_serves_them_alone_and_the_main_port_not(tmp_path: Path, key_folder: Path) -> None:
    port = _free_port()
    with running_server(tmp_path / "data", "--metrics-port", str(port), key_folder=key_folder) as server:
        with httpx.Client(base_url=server.url, verify=_trusting(server.bundle)) as http:
            assert http.get("/metrics").status_code == 404
            http.get("/health").raise_for_status()
            http.get("/health").raise_for_status()
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        found = Scrape(scraped.text)
        assert found.value("presenced_http_requests_total", **HEALTH) == 2
        # The main port's 404 for /metrics is counted, under no raw path.
        assert found.value("presenced_http_requests_total", route="unmatched", method="GET", status="404") == 1
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 404
        assert server.alive


def test_no_metrics_turns_them_off(tmp_path: Path, key_folder: Path) -> None:
    with (
        running_server(tmp_path / "data", "--no-metrics", key_folder=key_folder) as server,
        httpx.Client(base_url=server.url, verify=_trusting(server.bundle)) as http,
    ):
        assert http.get("/metrics").status_code == 404
        assert http.get("/health").status_code == 200


def test_a_worker_serves_metrics_on_its_port(tmp_path: Path, key_folder: Path) -> None:
    """``presenced worker --metrics-port``: the worker's deliveries and the backlogs, for a worker apart."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    command = [sys.executable, "-m", "presenced", "worker", "--data-dir", str(data_dir), "--metrics-port", str(port)]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        scraped = _scrape_when_listening(f"http://127.0.0.1:{port}/metrics", worker)
    finally:
        stop_process(worker)
    found = Scrape(scraped)
    assert found.value("presenced_sweeper_lag_seconds") == 0
    assert found.value("presenced_outbox_pending_notifications") == 0
    assert "presenced_webhook_deliveries_total" in found.names


def _scrape_when_listening(url: str, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return httpx.get(url).raise_for_status().text
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_environment_sets_them_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRESENCED_DATA_DIR", str(tmp_path))
    assert Settings.from_env().metrics is True
    monkeypatch.setenv("PRESENCED_METRICS", "off")
    assert Settings.from_env().metrics is False
    monkeypatch.delenv("PRESENCED_METRICS")
    monkeypatch.setenv("PRESENCED_METRICS_PORT", "9464")
    assert Settings.from_env().metrics_port == 9464
    monkeypatch.setenv("PRESENCED_METRICS_PORT", "8000")
    with pytest.raises(ConfigurationError, match="must differ"):
        Settings.from_env()
