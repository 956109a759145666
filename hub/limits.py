"""Connection limits of the hub's HTTP server: a cap on open connections, header and idle timeouts.

uvicorn waits forever for the headers of a connection that sends nothing, so idle sockets pile up
until the process runs out of file descriptors and serves no one. This module gives the server a
protocol that:

* closes a connection whose request headers are not complete ``header_seconds`` after it opened
  (or after the previous response, for a kept-alive one): slowloris and idle sockets go;
* closes a kept-alive connection idle for ``idle_seconds`` (uvicorn's keep-alive timeout);
* at ``max_connections`` open connections, makes room by closing the oldest one that has no request
  in progress; when every connection is busy, answers the new one at once with ``503`` and
  ``Retry-After`` and closes it (shedding, not failing);
* logs all this rate-limited (:mod:`hub.ratelog`).

The process's open-file limit is raised to fit the cap. Body trickling is bounded by the ingest
handler (408 after 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

from hub import ratelog
from hub.options import numeric

SHED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: 59\r\n\r\n"
    b'{"error":"the hub is at its connection limit; retry soon"}\n'
)
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: 49\r\n\r\n"
    b'{"error":"request headers did not arrive in time"}'
)


# A key of the request's ASGI scope, set once its whole body has arrived: the ingest handler then
# reads it without arming a timeout (hub.ingest).
BODY_RECEIVED = "flotilla.body_received"


@dataclass(frozen=True)
class Limits:
    max_connections: int = 1000
    header_seconds: float = 10.0
    idle_seconds: float = 15.0
    backlog: int = 2048

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.header_seconds <= 0 or self.idle_seconds <= 0:
            raise ValueError("connection limits must be positive")


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    d = Limits()
    numeric(
        parser,
        "--max-connections",
        d.max_connections,
        "N",
        "open connections at most; more are shed with 503",
    )
    numeric(parser, "--header-timeout", d.header_seconds, "SECONDS", "time for a request's headers to arrive")
    numeric(
        parser,
        "--idle-timeout",
        d.idle_seconds,
        "SECONDS",
        "idle time before a kept-alive connection is closed",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(args.max_connections, args.header_timeout, args.idle_timeout)


def fit_open_files(limits: Limits) -> Limits:
    """Raise the soft open-file limit to hold ``max_connections`` plus the database's files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + 256
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft < wanted:
        fitted = max(1, soft - 256)
        ratelog.event("max_connections_lowered", asked=limits.max_connections, to=fitted, open_files=soft)
        return Limits(fitted, limits.header_seconds, limits.idle_seconds, limits.backlog)
    return limits


def server_options(limits: Limits) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keyword arguments for a hub with these limits."""
    limits = fit_open_files(limits)
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": limits.idle_seconds,
        "backlog": limits.backlog,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        _shed = False
        _header_timer: asyncio.TimerHandle | None = None
        _in_headers = False  # a request has begun and its headers are not complete
        opened_at = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self.opened_at = time.monotonic()
            if len(self.connections) >= limits.max_connections and not _make_room(self.connections):
                self._shed = True
                self.transport = transport
                transport.write(SHED_RESPONSE)
                transport.close()
                ratelog.event("connection_shed", open=len(self.connections), limit=limits.max_connections)
                return
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._shed:
                return
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._shed:
                return
            super().data_received(data)
            # The next request on a kept-alive connection began in this data: its headers must come
            # in time. Armed only when they are not all here yet (a request that arrives whole, as
            # an agent's report does, costs no timer).
            if self._in_headers:
                self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_headers = True

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            if self.cycle is not None and not self.cycle.more_body:
                self.scope[BODY_RECEIVED] = True  # type: ignore[literal-required]

        def busy(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(limits.header_seconds, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing() and not self.busy():
                ratelog.event("request_headers_timeout", seconds=limits.header_seconds)
                self.transport.write(TIMEOUT_RESPONSE)
                self.transport.close()

    def _make_room(connections: set[Any]) -> bool:
        """Close the oldest connection with no request in progress; False if every one is busy."""
        idle = [c for c in connections if isinstance(c, GuardedProtocol) and not c.busy() and not c._shed]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.opened_at)
        oldest.transport.close()
        connections.discard(oldest)  # counted out now; connection_lost follows
        ratelog.event("idle_connection_closed_for_room", limit=limits.max_connections)
        return True

    return GuardedProtocol
