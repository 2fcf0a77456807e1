"""The process's log: its format (JSON lines or text) and level, and warnings that could come many
times a second.

Every line goes to stderr through one handler (``configure``). Warnings that could come many times a
second (every request refused during an outage, every failed publish) are logged once per ``EVERY``
seconds for each kind, saying so, rather than once each."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import msgspec

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


# ---- The log's format and level (``--log-format``, ``--log-level``) ----

#: ``--log-level``'s names, and the logging levels they stand for.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMATS = ("json", "text")
#: The logger of the request lines (one per request, at INFO).
REQUEST_LOGGER = "presenced.request"
#: Below this, other libraries' loggers (uvicorn, httpx, SQLAlchemy) stay quiet whatever ``--log-level`` says:
#: their debug and info lines may carry URLs, headers or SQL parameters.
OTHERS_LEVEL = logging.WARNING


def default_format(stream: object) -> str:
    """json for a collector (stderr not a terminal), text for a person at one."""
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def with_fields(**values: object) -> dict[str, object]:
    """``extra=`` for a log call whose line carries ``values`` as fields of their own
    (``log.warning("...", extra=with_fields(job="sweep"))``)."""
    return {"fields": values}


class _Clock:
    """``2026-12-08T01:02:03.456Z`` for a record's time; the part down to the second is made once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the record's fields
    (``with_fields``), and ``error`` with the traceback when there is one."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()
        self._encode = msgspec.json.Encoder().encode

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": self._clock.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__.get("fields")
        if fields:
            line.update(fields)
        if record.exc_info or record.exc_text:
            line["error"] = _traceback(self, record)
        return self._encode(line).decode()


class TextFormatter(logging.Formatter):
    """``TIME LEVEL logger: message key=value ...`` (fields that have no value left out), then the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        text = f"{self._clock.stamp(record.created)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = record.__dict__.get("fields")
        if fields:
            text += "".join(f" {key}={value}" for key, value in fields.items() if value is not None)
        if record.exc_info or record.exc_text:
            text += "\n" + _traceback(self, record)
        return text


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    if not record.exc_text and record.exc_info:
        record.exc_text = formatter.formatException(record.exc_info)
    return record.exc_text or ""


_configured: list[logging.Handler] = []


def configure(log_format: str, level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log line of the process to ``stream`` (stderr) in ``log_format`` ("json" or "text"):
    presenced's loggers from ``level`` up, other libraries' from warning up. Returns the handler."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    root = logging.getLogger()
    while _configured:  # configured before (a test): only the handler this function added goes
        root.removeHandler(_configured.pop())
    _configured.append(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    # The formatters use none of these: a record need not look them up.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # (Python 3.12 on)
    root.addHandler(handler)
    root.setLevel(max(LEVELS[level], OTHERS_LEVEL))
    logging.getLogger("presenced").setLevel(LEVELS[level])
    return handler
