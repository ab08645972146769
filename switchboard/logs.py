"""How every process writes its log: text lines for a person at a terminal, or JSON lines for a log shipper.

`SWITCHBOARD_LOG_FORMAT=json` gives one JSON object per line with `time` (UTC, ISO 8601), `level`, `logger`,
`message`, and, where the line is about a web request, `request_id` (the id on the answer's `X-Request-Id`
and in the problem a caller sees), so a 5xx a user reports is one search away. A traceback goes in
`exception`, still on the same line.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class JsonLines(logging.Formatter):
    """One JSON object per record, never more than one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter_config(log_format: LogFormat) -> dict[str, Any]:
    """The web app's formatter, as `logging.config.dictConfig` takes it (Litestar's LoggingConfig)."""
    if log_format == "json":
        return {"()": JsonLines}
    return {"format": "%(asctime)s " + TEXT_FORMAT}


def formatter_for(log_format: LogFormat) -> logging.Formatter:
    return JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


#: Libraries that log every tick or request at INFO (alembic: its plugins and context each time a process
#: checks the schema) speak only when they warn (as in the web app).
QUIET_LIBRARIES = ("apscheduler", "httpx", "aiosqlite", "alembic")


def use_log_level(level: str) -> None:
    """SWITCHBOARD_LOG_LEVEL for a long-running CLI process (the worker): our own lines at that level, the
    chatty libraries at WARNING. Other commands stay at WARNING so their answers are not buried in logs."""
    logging.getLogger().setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def use_log_format(log_format: LogFormat) -> None:
    """Give every handler of the root logger this format (the CLI's processes, once settings are read)."""
    formatter = formatter_for(log_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def flush_queued_logs() -> None:
    """Write out what the web app's queued log handlers still hold. uvicorn ends a process on SIGTERM by
    raising the signal again, which skips the `atexit` hook that would have flushed them, so the last lines
    (the "web process stopping" line among them) were lost about one stop in three."""
    handlers = [*logging.getLogger().handlers]
    for name in logging.root.manager.loggerDict:
        handlers += getattr(logging.getLogger(name), "handlers", [])
    listeners = {id(found): found for h in handlers if (found := getattr(h, "listener", None)) is not None}
    for listener in listeners.values():
        try:
            listener.stop()  # processes everything queued, then ends its thread
            listener.start()  # and listens again, for whatever is logged after
        except RuntimeError:  # not started, or stopped already
            continue
