"""`python3 dev.py serve`, the README's first command: stopping it stops the server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import listening_url

ROOT = Path(__file__).resolve().parents[2]


def start(data_dir: Path) -> tuple[subprocess.Popen[str], int]:
    """``dev.py serve`` on a free port; the process and the port it listens on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "serve", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    port = urlsplit(listening_url(process, timeout=180)).port  # a first run installs into .venv first
    assert port is not None
    return process, port


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_dev_py_serve_stops_the_server(stop: signal.Signals, tmp_path: Path, key_folder: Path) -> None:
    """Signalling the PID of `python3 dev.py serve` stops the server: nothing is left answering."""
    data_dir = tmp_path / "data"
    shutil.copytree(key_folder, data_dir / "keys")
    process, port = start(data_dir)
    try:
        assert answers(port)
        process.send_signal(stop)
        process.wait(timeout=30)
        assert not answers(port), "the server still answers after dev.py stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
