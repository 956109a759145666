"""A reader process as the main process sees it: started, watched, handed connections, restarted.

The two talk over a ``SOCK_SEQPACKET`` socket pair: the main process sends the reader its settings
(one message, so the database URL never appears on a command line), the reader answers ``ready``
once it has loaded the fleet, and from then on each message from the main process carries one
connection's file descriptor. When the socket closes, the other side is gone: a reader whose main
process died shuts down; a reader that died is started again after a backoff, and meanwhile the
main process serves reads itself (:mod:`hub.dispatch`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from dataclasses import asdict
from typing import Any

import structlog

from hub import ratelog
from hub.connectivity import Thresholds
from hub.context import HubConfig
from hub.limits import Limits
from hub.readsync import CommitCounter
from hub.reportstore import Retention

log = structlog.get_logger("hub.readproc")

READY = b"ready"
RESTART_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_SECONDS = 10.0


def settings_message(config: HubConfig, limits: Limits, name: str) -> bytes:
    """What a reader process needs to know, as the one message it reads first."""
    return json.dumps(
        {
            "name": name,
            "data_dir": str(config.data_dir),
            "database_url": config.database_url,
            "public_read": config.public_read,
            "thresholds": asdict(config.thresholds),
            "max_body": config.max_body,
            "retention": asdict(config.retention),
            "read_cache_seconds": config.read_cache_seconds,
            "rollout_view_seconds": config.rollout_view_seconds,
            "limits": asdict(limits),
        }
    ).encode()


def settings_from(message: bytes) -> tuple[str, HubConfig, Limits]:
    """The reader's side of :func:`settings_message`."""
    from pathlib import Path

    data: dict[str, Any] = json.loads(message)
    config = HubConfig(
        data_dir=Path(data["data_dir"]),
        database_url=data["database_url"],
        public_read=data["public_read"],
        thresholds=Thresholds(**data["thresholds"]),
        max_body=data["max_body"],
        retention=Retention(**data["retention"]),
        read_cache_seconds=data["read_cache_seconds"],
        rollout_view_seconds=data["rollout_view_seconds"],
    )
    return data["name"], config, Limits(**data["limits"])


class ReaderProcess:
    def __init__(self, name: str, settings: bytes, counter: CommitCounter) -> None:
        self.name = name
        self.ready = False  # loaded and taking connections
        self._settings = settings
        self._counter = counter
        self._ctrl: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        fds = (theirs.fileno(), self._counter.fd)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hub.readworker", *map(str, fds)],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches the main process only, which then stops it
        )
        theirs.close()
        ours.sendall(self._settings)
        ours.setblocking(False)
        self._ctrl = ours
        self._loop.add_reader(ours.fileno(), self._message)
        log.info("reader_started", reader=self.name, pid=self._process.pid)

    def hand(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to this reader; False if it cannot take it now (then serve it elsewhere)."""
        if not self.ready or self._ctrl is None:
            return False
        try:
            socket.send_fds(self._ctrl, [b"c"], [conn.fileno()])
        except (BlockingIOError, InterruptedError):  # it is not keeping up: never wait for it here
            ratelog.event("reader_busy", reader=self.name)
            return False
        except OSError:
            self._lost()
            return False
        return True

    async def stop(self) -> None:
        """Close the control socket (the reader then finishes its requests and exits) and reap it."""
        self._stopping = True
        self._close_ctrl()
        process = self._process
        if process is None:
            return
        try:
            await asyncio.to_thread(process.wait, STOP_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("reader_killed", reader=self.name, pid=process.pid, after_seconds=STOP_SECONDS)
            process.kill()
            await asyncio.to_thread(process.wait)

    def _message(self) -> None:
        assert self._ctrl is not None
        try:
            data = self._ctrl.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data == READY:
            self.ready = True
            self._failures = 0
            log.info("reader_ready", reader=self.name, pid=self.pid)
        elif not data:
            self._lost()

    def _lost(self) -> None:
        """The reader is gone (or broke its socket): serve without it, start it again later."""
        self._close_ctrl()
        if self._stopping or self._loop is None:
            return
        delay = RESTART_SECONDS[min(self._failures, len(RESTART_SECONDS) - 1)]
        self._failures += 1
        code = self._process.poll() if self._process is not None else None
        log.warning("reader_exited", reader=self.name, pid=self.pid, exit_code=code, restart_in=delay)
        self._loop.call_later(delay, self._restart)

    def _restart(self) -> None:
        if self._stopping:
            return
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # its socket is closed: it cannot be given work any more
            self._process.wait()
        self.start()

    def _close_ctrl(self) -> None:
        self.ready = False
        if self._ctrl is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._ctrl.fileno())
            self._ctrl.close()
            self._ctrl = None
