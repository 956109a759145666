"""Running the hub's HTTP server: uvicorn alone, or uvicorn behind the dispatcher with reader processes.

uvicorn's server is used as it is (signals, graceful shut-down, its HTTP protocol with the hub's
limits); with reader processes it listens on no socket of its own: the dispatcher
(:mod:`hub.dispatch`) accepts every connection and hands the ones this process serves to uvicorn's
protocol (``loop.connect_accepted_socket``), the same way uvicorn's own listener would.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import structlog
import uvicorn
from starlette.applications import Starlette

from hub.dispatch import Dispatcher
from hub.limits import Limits, server_options
from hub.readproc import ReaderProcess
from hub.warmup import Loading

log = structlog.get_logger("hub")


def protocol_factory(server: uvicorn.Server) -> Callable[[], asyncio.Protocol]:
    """What uvicorn's listener would call for a new connection (see uvicorn.Server.startup)."""
    config = server.config

    def create() -> asyncio.Protocol:
        protocol: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=server.server_state, app_state=server.lifespan.state
        )
        return protocol

    return create


def serve_connection(server: uvicorn.Server, conn: socket.socket, tasks: set[asyncio.Task[object]]) -> None:
    """Serve an accepted connection in this process with ``server``'s HTTP protocol."""
    loop = asyncio.get_running_loop()
    if conn.family in (socket.AF_INET, socket.AF_INET6):
        # asyncio's own listener does this for each connection, connect_accepted_socket does not:
        # without it every answer waits for Nagle and delayed ACKs (ingest throughput halved)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connecting = loop.connect_accepted_socket(protocol_factory(server), conn)
    task: asyncio.Task[object] = loop.create_task(connecting)
    tasks.add(task)  # a reference until it has run (the transport then keeps the connection alive)
    task.add_done_callback(tasks.discard)


class DispatchingServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        app: Starlette,
        listener: socket.socket,
        readers: list[ReaderProcess],
        limits: Limits,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._starting: asyncio.Task[None] | None = None
        self._listener = listener
        self._readers = readers
        self._limits = limits
        self._dispatcher: Dispatcher | None = None
        self._pending: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the lifespan; no listener of uvicorn's own
        if self.should_exit:
            return
        self._starting = asyncio.create_task(self._start_readers())
        here = self._pending
        self._dispatcher = Dispatcher(
            self._listener, lambda conn: serve_connection(self, conn, here), self._readers, self._limits
        )
        self._dispatcher.start()
        host, port = self._listener.getsockname()[:2]
        log.info("hub_listening", host=host, port=port, read_processes=len(self._readers))

    async def _start_readers(self) -> None:
        """After this process has loaded the fleet: the two loads would only slow each other (the
        port is answered meanwhile, and this process serves reads until a reader is ready)."""
        loading: Loading = self._app.state.loading
        while not loading.ready.is_set():
            await asyncio.sleep(0.1)
        for reader in self._readers:
            reader.start()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._starting is not None:
            self._starting.cancel()
        if self._dispatcher is not None:
            self._dispatcher.close()
        await asyncio.gather(*(reader.stop() for reader in self._readers), super().shutdown(sockets))


def run(app: Starlette, host: str, port: int, limits: Limits, readers: list[ReaderProcess]) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; with ``readers``, behind the dispatcher."""
    config = uvicorn.Config(app, host=host, port=port, **server_options(limits))
    if not readers:
        uvicorn.Server(config).run()
        return
    config.load()
    listener = config.bind_socket()  # exits with uvicorn's message if the address is taken
    listener.set_inheritable(False)
    listener.listen(limits.backlog)
    DispatchingServer(config, app, listener, readers, limits).run()
