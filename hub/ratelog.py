"""Logs that stay quiet under overload: the same event at most once per interval, with a count.

A flood of idle sockets, bad requests or "too many open files" must not turn into a flood of log
lines (a disk filled with the same message is a second outage).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import structlog

log = structlog.get_logger("hub.server")

INTERVAL_SECONDS = 10.0


class RateLimiter:
    def __init__(self, interval: float = INTERVAL_SECONDS, clock: Any = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None if this event should not be logged now; else how many were suppressed since the last."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            if len(self._last) > 1000:  # many distinct keys: forget the old ones, stay bounded
                self._last.clear()
            self._last[key] = now
            return self._suppressed.pop(key, 0)


_limiter = RateLimiter()


def event(name: str, **fields: Any) -> None:
    """Log ``name`` at warning level, rate-limited per name."""
    suppressed = _limiter.allow(name)
    if suppressed is not None:
        log.warning(name, suppressed_since_last=suppressed, **fields)


class RateLimitFilter(logging.Filter):
    """For the server's stdlib loggers (uvicorn, asyncio): one record per message per interval."""

    def filter(self, record: logging.LogRecord) -> bool:
        suppressed = _limiter.allow(f"{record.name}:{record.msg}")
        if suppressed is None:
            return False
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} like it suppressed)"
        return True


def quiet_server_loggers() -> None:
    for name in ("uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitFilter) for f in logger.filters):
            logger.addFilter(RateLimitFilter())


def install_loop_exception_handler(loop: asyncio.AbstractEventLoop) -> None:
    """Errors the event loop reports itself (e.g. accept() failing with EMFILE) go through the limiter."""

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        event("event_loop_error", message=str(context.get("message", "")), error=repr(exc) if exc else None)

    loop.set_exception_handler(handle)
    quiet_server_loggers()
