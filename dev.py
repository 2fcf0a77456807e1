#!/usr/bin/env python3
"""Quick start: `python3 dev.py serve` starts presenced with demo data; `python3 dev.py test` runs the tests.

Both create a virtual environment in .venv (on first use, and again when
pyproject.toml changes) and install presenced into it. Anything after the
command is passed on: `python3 dev.py serve --port 9000`, `python3 dev.py test -k tokens`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def ensure_venv(extras: str) -> None:
    """Create .venv and install the project (with ``extras``) unless it is already current.

    An install with the test extras also serves ``serve``: it holds everything ``serve`` needs.
    """
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed{extras}"
    for current in {stamp, VENV / ".installed[test]"}:
        if current.exists() and current.read_text() == wanted:
            return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print(f"installing presenced{extras} into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f".{extras}"], cwd=ROOT, check=True)
    stamp.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"serve", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        ensure_venv("")
        args = [str(BIN / "presenced"), "serve", "--demo", *rest]
    else:
        ensure_venv("[test]")
        args = [str(PYTHON), "-m", "pytest", "-n", "2", *rest]
    sys.stdout.flush()
    if os.name == "posix":
        # The command takes this process's place: its PID, its signals (Ctrl-C, SIGTERM), its exit status.
        os.chdir(ROOT)
        os.execv(args[0], args)
    try:
        return subprocess.call(args, cwd=ROOT)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
