"""JSON log lines: one object per line, with the request id a caller was shown."""

from __future__ import annotations

import json
import logging
import sys

from api.app import logging_config
from switchboard.logs import JsonLines, formatter_config
from switchboard.settings import Settings


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("api.problems", logging.ERROR, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_a_json_line_carries_the_request_id_and_the_traceback_on_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        exc_info = sys.exc_info()
    record = _record("%s %s failed (request id %s)", "GET", "/x", "abc123", request_id="abc123")
    record.exc_info = exc_info
    line = JsonLines().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "GET /x failed (request id abc123)"
    assert parsed["request_id"] == "abc123"
    assert parsed["level"] == "ERROR"
    assert parsed["logger"] == "api.problems"
    assert "ValueError: bad\nthing" in parsed["exception"]
    assert parsed["time"].endswith("+00:00")


def test_a_line_without_a_request_names_none() -> None:
    parsed = json.loads(JsonLines().format(_record("delivery failed")))
    assert "request_id" not in parsed
    assert "exception" not in parsed


def test_the_web_app_formats_with_the_configured_format() -> None:
    json_config = logging_config(Settings(log_format="json"))
    assert json_config.formatters["standard"] == formatter_config("json")
    assert json_config.formatters["standard"]["()"] is JsonLines
    assert "format" in logging_config(Settings(log_format="text")).formatters["standard"]


def test_a_worker_at_info_hears_alembic_only_when_it_warns() -> None:
    """A worker's start logged nine alembic lines (its plugins, its context) each time it checked the schema."""
    from switchboard.logs import use_log_level

    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    was = root.level, alembic.level
    try:
        use_log_level("info")
        assert not logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.INFO)
        assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.WARNING)
        assert logging.getLogger("switchboard.background").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(was[0])
        alembic.setLevel(was[1])
