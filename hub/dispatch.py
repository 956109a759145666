"""Connections to the right process: reads to the hub's reader processes, everything else here.

Python runs one thread at a time per process, so a page being rendered in the process that accepts
reports slows every agent (the writer thread waits for the interpreter after each SQLite call).
``flotilla-hub serve --read-processes N`` therefore starts N reader processes
(:mod:`hub.readworker`) and lets the main process own the listening socket: it accepts each
connection, peeks at its request line without consuming it (``MSG_PEEK``) and

* a ``GET``/``HEAD`` (except ``/healthz`` and ``/metrics``, which describe this process) is handed to a
  ready reader process as a file descriptor (``SCM_RIGHTS``): the reader serves that connection from
  then on, and the main process never touches it again;
* anything else (reports, rollout gates, garbage) is served here by uvicorn's own protocol.

A connection is judged by its first request; a report sent later on a connection that went to a
reader is told to reconnect (:func:`hub.app._elsewhere`). Until a reader has loaded the fleet, and
while none is running (it exited and is being restarted), the main process serves reads itself:
start-up time and availability do not depend on the readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

import structlog

from hub import ratelog
from hub.limits import TIMEOUT_RESPONSE, Limits
from hub.readproc import ReaderProcess

log = structlog.get_logger("hub.dispatch")

MAIN, READER = "main", "reader"
PEEK_BYTES = 2048
MAIN_PATHS = (b"/healthz", b"/metrics")  # answered by the main process (its own state)
RECHECK_SECONDS = 0.01  # a request line that came in pieces is peeked at again after this
ACCEPTS_PER_WAKEUP = 64


def route(head: bytes) -> str | None:
    """Where a connection whose first bytes are ``head`` belongs; None while that cannot be told."""
    method, space, rest = head.partition(b" ")
    if not space:
        partial = b"GET ".startswith(head) or b"HEAD ".startswith(head)
        return None if partial and len(head) < PEEK_BYTES else MAIN
    if method not in (b"GET", b"HEAD"):
        return MAIN
    ends = [i for i in (rest.find(b" "), rest.find(b"?"), rest.find(b"\r")) if i >= 0]
    if not ends:
        return None if len(head) < PEEK_BYTES else READER
    return MAIN if rest[: min(ends)] in MAIN_PATHS else READER


class Dispatcher:
    def __init__(
        self,
        listener: socket.socket,
        serve_here: Callable[[socket.socket], None],
        readers: list[ReaderProcess],
        limits: Limits,
    ) -> None:
        self._listener = listener
        self._serve_here = serve_here
        self._readers = readers
        self._limits = limits
        self._waiting: dict[socket.socket, asyncio.TimerHandle] = {}  # peeked, not yet routed
        self._turn = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener.setblocking(False)
        self._loop.add_reader(self._listener.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; connections not yet routed are closed (their clients retry)."""
        if self._loop is not None:
            self._loop.remove_reader(self._listener.fileno())
        self._listener.close()
        for conn in list(self._waiting):
            self._drop(conn)

    def _accept(self) -> None:
        assert self._loop is not None
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: stop accepting for a moment
                ratelog.event("accept_failed", error=str(exc))
                self._loop.remove_reader(self._listener.fileno())
                self._loop.call_later(0.1, self._resume)
                return
            conn.setblocking(False)
            if not any(reader.ready for reader in self._readers):
                self._serve_here(conn)
                continue
            if len(self._waiting) >= self._limits.max_connections:
                # full of connections that have not said what they want: the oldest one goes (idle
                # sockets must not lock agents out), as uvicorn's protocol does here (hub.limits)
                oldest = next(iter(self._waiting))
                self._forget(oldest)
                _answer_and_close(oldest, TIMEOUT_RESPONSE)
                ratelog.event("idle_connection_closed_for_room", limit=self._limits.max_connections)
            timer = self._loop.call_later(self._limits.header_seconds, self._late, conn)
            self._waiting[conn] = timer
            self._loop.add_reader(conn.fileno(), self._peek, conn)

    def _resume(self) -> None:
        if self._loop is not None and self._listener.fileno() >= 0:  # not closed meanwhile
            self._loop.add_reader(self._listener.fileno(), self._accept)

    def _peek(self, conn: socket.socket) -> None:
        assert self._loop is not None
        try:
            head = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not head:  # closed before sending anything
            self._drop(conn)
            return
        where = route(head)
        self._loop.remove_reader(conn.fileno())
        if where is None:  # the bytes stay unread, so the socket stays readable: look again shortly
            self._loop.call_later(RECHECK_SECONDS, self._rearm, conn)
            return
        self._waiting.pop(conn).cancel()
        if where == READER and self._hand(conn):
            conn.close()  # the reader process holds its own descriptor of the connection now
            return
        self._serve_here(conn)

    def _rearm(self, conn: socket.socket) -> None:
        if conn in self._waiting and self._loop is not None:
            self._loop.add_reader(conn.fileno(), self._peek, conn)

    def _hand(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the next ready reader process; False if none took it."""
        ready = [reader for reader in self._readers if reader.ready]
        for offset in range(len(ready)):
            reader = ready[(self._turn + offset) % len(ready)]
            if reader.hand(conn):
                self._turn += offset + 1
                return True
        return False

    def _late(self, conn: socket.socket) -> None:
        if conn in self._waiting:
            ratelog.event("request_headers_timeout", seconds=self._limits.header_seconds)
            self._forget(conn)
            _answer_and_close(conn, TIMEOUT_RESPONSE)

    def _drop(self, conn: socket.socket) -> None:
        self._forget(conn)
        conn.close()

    def _forget(self, conn: socket.socket) -> None:
        timer = self._waiting.pop(conn, None)
        if timer is not None:
            timer.cancel()
        if self._loop is not None and conn.fileno() >= 0:
            self._loop.remove_reader(conn.fileno())


def _answer_and_close(conn: socket.socket, response: bytes) -> None:
    with contextlib.suppress(OSError):
        conn.send(response)
    conn.close()
