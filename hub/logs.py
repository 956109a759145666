"""Structured JSON logs, one event per line on stderr (the server's stdlib loggers too)."""

from __future__ import annotations

import json
import logging
import sys
import time

import structlog


class _JsonFormatter(logging.Formatter):
    """uvicorn and asyncio log through the standard library: same one-line JSON shape as structlog."""

    def format(self, record: logging.LogRecord) -> str:
        event = {"event": record.getMessage(), "logger": record.name, "level": record.levelname.lower()}
        event["timestamp"] = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z"
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event)


def configure(level: int = logging.INFO, process: str | None = None) -> None:
    """``process`` names a reader process in each of its events (the main process has none)."""

    def name_process(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
        event.setdefault("process", process)
        return event

    structlog.configure(
        processors=[
            *([name_process] if process else []),
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    formatter = _JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
