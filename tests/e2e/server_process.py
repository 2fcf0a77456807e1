"""A real `presenced serve --demo` process over HTTPS, for tests that drive it with the official clients."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 60


@dataclass
class Demo:
    """What `presenced demo --json` printed: tenant, users (with passwords) and apps (with the daemon's secret)."""

    raw: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        return str(self.raw["tenantId"])

    @property
    def authority(self) -> str:
        return str(self.raw["authority"])

    def user(self, nickname: str) -> dict[str, Any]:
        """The demo user whose UPN starts with ``nickname@``."""
        for user in self.raw["users"]:
            if user["userPrincipalName"].startswith(f"{nickname}@"):
                return dict(user)
        raise KeyError(nickname)

    @property
    def daemon_app(self) -> dict[str, Any]:
        return next(dict(a) for a in self.raw["apps"] if not a["publicClient"])

    @property
    def public_app(self) -> dict[str, Any]:
        return next(dict(a) for a in self.raw["apps"] if a["publicClient"])


class ServerProcess:
    """A running server; its output is collected in the background (see ``log``)."""

    def __init__(self, process: subprocess.Popen[str], data_dir: Path, env: dict[str, str]) -> None:
        self.process, self.data_dir, self.env = process, data_dir, env
        self.url = ""
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, name="presenced-server-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            match = re.search(r"listening on (https?://\S+)", line)
            if match and not self.url:
                self.url = match.group(1)
                self._listening.set()
        self._listening.set()  # the output ended: wake the waiter either way

    def wait_until_listening(self, timeout: float = STARTUP_TIMEOUT) -> None:
        if not self._listening.wait(timeout) or not self.url:
            raise AssertionError(f"the server did not start (exit code {self.process.poll()}):\n{self.log()}")

    def log(self) -> str:
        return "".join(self._lines)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def bundle(self) -> Path:
        """System roots plus the server's local CA: what clients verify the server with."""
        return self.data_dir / "tls" / "bundle.pem"

    def cli(self, *args: str) -> str:
        """Run ``python -m presenced ARGS --data-dir DATA_DIR`` and return its standard output."""
        result = subprocess.run(
            [sys.executable, "-m", "presenced", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.env,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"presenced {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def demo(self) -> Demo:
        """Reset the demo tenant and read its users, passwords and app credentials."""
        return Demo(json.loads(self.cli("demo", "--json")))

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, and SIGKILL if the process has not exited after ``timeout`` seconds."""
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._reader.join(timeout=5)


@contextmanager
def running_server(
    data_dir: Path, *extra: str, key_folder: Path | None = None, stop_timeout: float = 10, demo: bool = True
) -> Iterator[ServerProcess]:
    """Start `presenced serve --demo --port 0` on ``data_dir`` (HTTPS from a local CA); stop it afterwards.
    With ``demo`` False, without ``--demo``: what the data directory holds is served as it is.

    ``key_folder``, when given, is copied to ``data_dir/keys`` so that the server need not make a signing key.
    On the way out the server gets SIGTERM, then SIGKILL after ``stop_timeout`` seconds.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    if key_folder is not None and not (data_dir / "keys").exists():
        shutil.copytree(key_folder, data_dir / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCED_")}
    env["PYTHONUNBUFFERED"] = "1"
    seed = ["--demo"] if demo else []
    process = subprocess.Popen(
        [sys.executable, "-m", "presenced", "serve", *seed, "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    server = ServerProcess(process, data_dir, env)
    try:
        started = time.monotonic()
        server.wait_until_listening()
        if not server.url.startswith("https://"):
            raise AssertionError(f"expected an HTTPS server, got {server.url}:\n{server.log()}")
        while not server.bundle.exists() and time.monotonic() - started < STARTUP_TIMEOUT:
            time.sleep(0.05)
        yield server
    finally:
        server.stop(stop_timeout)
