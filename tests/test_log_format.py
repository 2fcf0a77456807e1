"""The process's log: JSON lines and text, the level, the settings that choose them, and the background
jobs' failures through the same formatter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from presenced.config import Settings
from presenced.errors import ConfigurationError
from presenced.logs import configure, default_format, with_fields, writer
from presenced.services.loops import repeat

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """What the loggers write once ``configure`` has run; the logging set-up is put back afterwards."""
    root, presenced = logging.getLogger(), logging.getLogger("presenced")
    levels = root.level, presenced.level
    stream = io.StringIO()
    yield stream
    for handler in root.handlers[:]:
        if getattr(handler, "stream", None) is stream:
            root.removeHandler(handler)
    root.setLevel(levels[0])
    presenced.setLevel(levels[1])


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_json_line_has_time_level_logger_message_and_the_fields_of_the_call(logged: io.StringIO) -> None:
    configure("json", "info", logged)
    logging.getLogger("presenced.sweeper").warning(
        "%d transitions left", 3, extra=with_fields(job="sweep", tenant_id="t-1")
    )
    [line] = lines(logged)
    record = json.loads(line)
    assert list(record) == ["time", "level", "logger", "message", "job", "tenant_id"]
    assert TIME.fullmatch(record["time"])
    assert record["level"] == "warning"
    assert record["logger"] == "presenced.sweeper"
    assert record["message"] == "3 transitions left"
    assert (record["job"], record["tenant_id"]) == ("sweep", "t-1")


def test_a_json_line_carries_a_traceback_as_one_field_on_one_line(logged: io.StringIO) -> None:
    configure("json", "info", logged)
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("presenced.deliveries").exception("sending failed")
    [line] = lines(logged)
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["message"] == "sending failed"
    assert record["error"].startswith("Traceback (most recent call last):")
    assert record["error"].endswith("ValueError: broken")


def test_a_text_line_reads_time_level_logger_message_then_the_fields_that_have_a_value(logged: io.StringIO) -> None:
    configure("text", "info", logged)
    log = logging.getLogger("presenced.request")
    log.info("GET /health 200", extra=with_fields(status=200, tenant_id=None, duration_ms=1.5))
    [line] = lines(logged)
    stamp, rest = line.split(" ", 1)
    assert TIME.fullmatch(stamp)
    assert rest == "INFO    presenced.request: GET /health 200 status=200 duration_ms=1.5"


def test_a_text_line_puts_the_traceback_after_it(logged: io.StringIO) -> None:
    configure("text", "info", logged)
    try:
        raise ValueError("broken")
    except ValueError:
        logging.getLogger("presenced.store").exception("a batch failed")
    first, *rest = lines(logged)
    assert first.endswith("ERROR   presenced.store: a batch failed")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: broken"


@pytest.mark.parametrize(
    ("level", "written"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warning", ["warning", "error"]),
        ("error", ["error"]),
    ],
)
def test_the_level_leaves_out_what_is_below_it(logged: io.StringIO, level: str, written: list[str]) -> None:
    configure("json", level, logged)
    log = logging.getLogger("presenced.feed")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [json.loads(line)["level"] for line in lines(logged)] == written


def test_other_libraries_log_from_warning_up_whatever_the_level(logged: io.StringIO) -> None:
    configure("json", "debug", logged)
    for name in ("httpx", "sqlalchemy.engine", "uvicorn.error"):
        logging.getLogger(name).info("GET https://example.test/?code=secret")
        logging.getLogger(name).warning("careful")
    assert [json.loads(line)["logger"] for line in lines(logged)] == ["httpx", "sqlalchemy.engine", "uvicorn.error"]
    assert "secret" not in logged.getvalue()


def test_configuring_again_replaces_the_handler_rather_than_adding_one(logged: io.StringIO) -> None:
    other = io.StringIO()
    configure("json", "info", other)
    configure("text", "info", logged)
    logging.getLogger("presenced.api").warning("once")
    assert other.getvalue() == ""
    assert len(lines(logged)) == 1


async def test_a_background_job_that_fails_logs_the_job_through_the_formatter(logged: io.StringIO) -> None:
    configure("json", "debug", logged)
    log = logging.getLogger("presenced.sweeper")

    async def failing() -> None:
        raise RuntimeError("no luck")

    task = asyncio.create_task(repeat(failing, 0.01, "sweep", log))
    for _ in range(500):  # a few rounds; the test waits for the first failure, however long it takes
        if "failed; retrying" in logged.getvalue():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started, failed = (json.loads(line) for line in lines(logged)[:2])
    assert (started["level"], started["job"], started["message"]) == ("debug", "sweep", "sweep started, every 0.01 s")
    assert (failed["level"], failed["job"], failed["message"]) == ("error", "sweep", "sweep failed; retrying")
    assert failed["error"].endswith("RuntimeError: no luck")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_default_format_is_text_at_a_terminal_and_json_elsewhere() -> None:
    assert default_format(_Terminal()) == "text"
    assert default_format(io.StringIO()) == "json"


def test_the_settings_read_the_format_and_level_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (Settings.from_env().log_format, Settings.from_env().log_level) == (None, "info")
    monkeypatch.setenv("PRESENCED_LOG_FORMAT", "Text")
    monkeypatch.setenv("PRESENCED_LOG_LEVEL", "WARNING")
    settings = Settings.from_env()
    assert (settings.log_format, settings.log_level) == ("text", "warning")
    assert Settings.from_env(log_format="json", log_level="debug").log_format == "json"


@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [("PRESENCED_LOG_FORMAT", "xml", "--log-format"), ("PRESENCED_LOG_LEVEL", "loud", "--log-level")],
)
def test_a_wrong_format_or_level_names_its_flag(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, flag: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"^{flag} \\({variable}\\) must be"):
        Settings.from_env()


def test_a_writer_writes_the_formatters_line_itself_and_hands_records_to_other_handlers(logged: io.StringIO) -> None:
    configure("json", "info", logged)
    collected: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record)

    direct = writer(logging.getLogger("presenced.request"))
    assert direct is not None
    direct("GET /health 200", {"status": 200})
    assert json.loads(logged.getvalue())["status"] == 200

    other = logging.getLogger("presenced.request.collected")
    other.addHandler(Collect())
    try:
        through_records = writer(other)
        assert through_records is not None
        through_records("GET /health 204", {"status": 204})
    finally:
        other.handlers.clear()
    [record] = collected
    assert (record.levelname, record.getMessage(), record.__dict__["fields"]) == (
        "INFO",
        "GET /health 204",
        {"status": 204},
    )
    assert json.loads(logged.getvalue().splitlines()[1])["status"] == 204  # and on to the root's handler


def test_no_writer_below_the_level(logged: io.StringIO) -> None:
    configure("json", "warning", logged)
    assert writer(logging.getLogger("presenced.request")) is None


async def test_a_writers_lines_reach_the_stream_by_the_end_of_the_loops_turn(tmp_path: Path) -> None:
    root, presenced = logging.getLogger(), logging.getLogger("presenced")
    levels = root.level, presenced.level
    with (tmp_path / "log").open("w") as stream:
        handler = configure("json", "info", stream)
        try:
            write = writer(logging.getLogger("presenced.request"))
            assert write is not None
            write("GET /health 200", {"status": 200})
            write("GET /health 200", {"status": 200})
            await asyncio.sleep(0)  # the loop's turn ends
            assert len((tmp_path / "log").read_text().splitlines()) == 2
        finally:
            root.removeHandler(handler)
            root.setLevel(levels[0])
            presenced.setLevel(levels[1])
