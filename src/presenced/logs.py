"""Warnings that could come many times a second (every request refused during an outage, every failed
publish) are logged once per ``EVERY`` seconds for each kind, saying so, rather than once each."""

from __future__ import annotations

import logging
import time

EVERY = 10.0
_last: dict[tuple[str, str], float] = {}


def warn_occasionally(log: logging.Logger, kind: str, message: str, *args: object) -> None:
    """Log ``message % args`` as a warning, unless a warning of ``kind`` went to ``log`` less than
    ``EVERY`` seconds ago."""
    now = time.monotonic()
    key = (log.name, kind)
    if now - _last.get(key, -EVERY) >= EVERY:
        _last[key] = now
        log.warning(f"{message} (reported once per {EVERY:.0f} s)", *args)
