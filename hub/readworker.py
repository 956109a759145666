"""A reader process of the hub: ``python -m hub.readworker CONTROL_FD COUNTER_FD`` (started by
``flotilla-hub serve --read-processes N``, never by hand).

It loads the fleet from the store like the main process, follows the writer's commits
(:mod:`hub.readsync`), and serves the connections the main process hands it over the control socket
(:mod:`hub.readproc`) with the same application, in reading role. When the control socket closes
(the main process stopped or died) it finishes what it is serving and exits.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Sequence

import structlog
import uvicorn

from hub import logs
from hub.app import Reading, create_app
from hub.limits import server_options
from hub.readproc import READY, settings_from
from hub.readsync import CommitCounter
from hub.serving import serve_connection

log = structlog.get_logger("hub.readworker")

USAGE = "usage: python -m hub.readworker CONTROL_FD COUNTER_FD (flotilla-hub serve starts it)"
MAX_SETTINGS = 1 << 20
# Where the cores are fewer than the busy processes, the scheduler gives the main process (reports)
# about three times a reader's share: agents first, people reading second.
NICENESS = 5
FDS_PER_MESSAGE = 1


class ReceivingServer(uvicorn.Server):
    """uvicorn without a listener: its connections arrive as descriptors on the control socket."""

    def __init__(self, config: uvicorn.Config, ctrl: socket.socket) -> None:
        super().__init__(config)
        self._ctrl = ctrl
        self._pending: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if self.should_exit:
            return
        self._ctrl.setblocking(False)
        asyncio.get_running_loop().add_reader(self._ctrl.fileno(), self._receive)

    def _receive(self) -> None:
        try:
            message, fds, _, _ = socket.recv_fds(self._ctrl, 16, FDS_PER_MESSAGE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message, fds = b"", []
        if not message and not fds:  # the main process is gone: stop taking work, finish, exit
            asyncio.get_running_loop().remove_reader(self._ctrl.fileno())
            self.should_exit = True
            return
        for fd in fds:
            serve_connection(self, socket.socket(fileno=fd), self._pending)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not all(a.isdigit() for a in args):
        print(USAGE, file=sys.stderr)
        return 2
    ctrl = socket.socket(fileno=int(args[0]))
    name, config, limits = settings_from(ctrl.recv(MAX_SETTINGS))
    logs.configure(process=name)
    os.nice(NICENESS)
    sys.setswitchinterval(0.001)
    counter = CommitCounter(int(args[1]))

    def ready() -> None:
        try:
            ctrl.send(READY)
        except OSError as exc:  # the main process is gone; the control socket's close stops us
            log.warning("reader_ready_not_sent", error=str(exc))

    app = create_app(config, Reading(counter, on_ready=ready))
    ReceivingServer(uvicorn.Config(app, **server_options(limits)), ctrl).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
