"""The process's log: its format (JSON lines or text) and level, and warnings that could come many
times a second.

Every line goes to stderr through one handler (``configure``). Warnings that could come many times a
second (every request refused during an outage, every failed publish) are logged once per ``EVERY``
seconds for each kind, saying so, rather than once each."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO, cast

import msgspec

from presenced.clock import real_seconds

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
    """``2026-12-08T01:02:03.456Z`` for a record's time, made once a millisecond (the part down to the
    second once a second)."""

    def __init__(self) -> None:
        self._second = self._milli = -1
        self._prefix = self._text = ""

    def stamp(self, created: float) -> str:
        milli = int(created * 1000)
        if milli != self._milli:
            self._milli = milli
            second, part = divmod(milli, 1000)
            if second != self._second:
                self._second = second
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._text = f"{self._prefix}.{part:03d}Z"
        return self._text


class LineFormatter(logging.Formatter):
    """A line from a record's time, level, logger, message and fields (``with_fields``), which ``line`` also
    makes without a record (``writer``): a JSON object, or text.

    JSON: ``time``, ``level``, ``logger``, ``message``, the fields, and ``error`` with the traceback when
    there is one. Text: ``TIME LEVEL logger: message key=value ...`` (fields that have no value left out),
    then the traceback."""

    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self._clock = _Clock()
        self._json = as_json
        self._encode = msgspec.json.Encoder().encode
        self._levels = {name: name.lower() for name in logging.getLevelNamesMapping()}

    def format(self, record: logging.LogRecord) -> str:
        error = None
        if record.exc_info or record.exc_text:
            if not record.exc_text and record.exc_info:
                record.exc_text = self.formatException(record.exc_info)
            error = record.exc_text
        fields = record.__dict__.get("fields")
        return self.line(record.created, record.levelname, record.name, record.getMessage(), fields, error)

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, object] | None,
        error: str | None = None,
    ) -> str:
        if not self._json:
            text = f"{self._clock.stamp(created)} {level:<7} {logger}: {message}"
            if fields:
                text += "".join(f" {key}={value}" for key, value in fields.items() if value is not None)
            return f"{text}\n{error}" if error else text
        line: dict[str, object] = {
            "time": self._clock.stamp(created),
            "level": self._levels.get(level) or level.lower(),
            "logger": logger,
            "message": message,
        }
        if fields:
            line.update(fields)
        if error:
            line["error"] = error
        return self._encode(line).decode()


class JsonFormatter(LineFormatter):
    """One JSON object per line."""

    def __init__(self) -> None:
        super().__init__(as_json=True)


class TextFormatter(LineFormatter):
    """One line of text per event (and a traceback's lines after it)."""

    def __init__(self) -> None:
        super().__init__(as_json=False)


def writer(log: logging.Logger, level: int = logging.INFO) -> Callable[[str, dict[str, object]], None] | None:
    """A function that logs ``(message, fields)`` at ``level`` to ``log``, found once for a line that comes
    often (a request's); None when ``log`` leaves that level out.

    Where the handlers that ``log``'s records reach are stream handlers with a ``LineFormatter``, without
    filters, the function writes the formatted line to their streams itself, without a record: it costs a
    fraction of a ``log.info``. Otherwise it makes a record and hands it to ``log``.
    """
    if not log.isEnabledFor(level):
        return None
    name, level_name = log.name, logging.getLevelName(level)
    handlers = _reached(log)
    direct = [
        h
        for h in handlers
        if type(h) is logging.StreamHandler and isinstance(h.formatter, LineFormatter) and h.level <= level
    ]
    if handlers and len(direct) == len(handlers) and not any(h.filters for h in handlers) and not log.filters:
        outputs = [(h, h.stream, cast(LineFormatter, h.formatter)) for h in direct]
        #: The loop that will flush the streams at the end of its turn, if any.
        pending: list[asyncio.AbstractEventLoop | None] = [None]

        def flush() -> None:
            pending[0] = None
            for handler, stream, _ in outputs:
                with handler.lock:  # type: ignore[union-attr]
                    stream.flush()

        def write(message: str, fields: dict[str, object]) -> None:
            created = real_seconds()
            for handler, stream, formatter in outputs:
                text = formatter.line(created, level_name, name, message, fields) + "\n"
                with handler.lock:  # type: ignore[union-attr]
                    stream.write(text)
            # The lines of one turn of the event loop reach the stream together, at its end.
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: at once
                flush()
                return
            if pending[0] is not loop:
                pending[0] = loop
                loop.call_soon(flush)

        return write

    def handle(message: str, fields: dict[str, object]) -> None:
        record = log.makeRecord(name, level, "", 0, message, (), None)
        record.fields = fields
        log.handle(record)

    return handle


def _reached(log: logging.Logger) -> list[logging.Handler]:
    """The handlers a record of ``log`` reaches, as ``Logger.callHandlers`` walks them."""
    found: list[logging.Handler] = []
    current: logging.Logger | None = log
    while current is not None:
        found += current.handlers
        current = current.parent if current.propagate else None
    return found


_configured: list[logging.Handler] = []


def _stderr() -> TextIO:
    """stderr (its file descriptor) without line buffering: a handler flushes after each line it emits
    anyway, and a ``writer`` once per turn of the event loop rather than once per line (one write for many
    requests). Closing it leaves stderr open."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stand-in for stderr (a test's capture)
        return sys.stderr
    return open(descriptor, "w", encoding="utf-8", errors="backslashreplace", closefd=False)


def configure(log_format: str, level: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every log line of the process to ``stream`` (stderr) in ``log_format`` ("json" or "text"):
    presenced's loggers from ``level`` up, other libraries' from warning up. Returns the handler."""
    handler = logging.StreamHandler(_stderr() if stream is None else stream)
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
    # uvicorn's loggers write through this handler too, even where uvicorn's own logging set-up ran before.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.NOTSET)
    logging.getLogger("presenced").setLevel(LEVELS[level])
    return handler
