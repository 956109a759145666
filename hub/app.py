"""The hub's ASGI application: routes, and the start-up/shut-down of its store, writer and readers.

The same application runs in the hub's main process (``role`` is a :class:`Writing`: it accepts
reports and bumps the shared commit counter after each commit) and in its reader processes (a
:class:`Reading`: pages and the read API only, kept current by :class:`hub.readsync.Follower`;
reports sent there are told to reconnect, which brings them to the main process, see
:mod:`hub.dispatch`).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub import api, fleetindex, history_store, rollout_api, rollout_index, views_api, views_web, web
from hub.context import READ_THREADS, HubConfig, HubContext, ReadConnections
from hub.credentials import Credentials
from hub.etag import ETags
from hub.ingest import IngestFirst
from hub.maintenance import ForgetWatch, Maintenance, Task
from hub.metrics import Metrics
from hub.ratelog import install_loop_exception_handler
from hub.readcache import ReadCache
from hub.readmodel import ReadModel
from hub.readsync import CommitCounter, Follower
from hub.replicas import SYNC_SECONDS, ReplicaSync, new_replica_id
from hub.rollout_book import RolloutBook
from hub.security import SecurityHeaders
from hub.warmup import Loading, Warmup
from hub.writer import ReportWriter

log = structlog.get_logger("hub")

CREDENTIALS_REFRESH_SECONDS = 2.0  # a revoked token or a forgotten cluster takes effect within this time
CHECKPOINT_SECONDS = 1.0
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


@dataclass
class Writing:
    """The main process: it writes, and tells reader processes of each commit through ``counter``."""

    counter: CommitCounter | None = None


@dataclass
class Reading:
    """A reader process: follows the writer through ``counter``; ``on_ready`` once loaded."""

    counter: CommitCounter
    on_ready: Callable[[], None] = field(default=lambda: None)


Role = Writing | Reading


def open_context(config: HubConfig, role: Role | None = None) -> HubContext:
    """Open (creating and migrating) the store, load the read model and start the writer (main
    process) or the follower (reader process)."""
    role = role or Writing()
    started = time.perf_counter()
    database = config.database
    replica = new_replica_id()
    loader = database.connect()
    sync = ReplicaSync(database.connect(), replica, config.clock)  # its mark first, then the load
    summaries = loader.load_summaries()
    stored = history_store.load(loader, config.clock())  # the fleet history saved before, both stores
    loader.close()
    model = ReadModel(config.thresholds, summaries, config.clock())
    sync.attach(model)
    del summaries
    writing = isinstance(role, Writing)
    journal = history_store.Journal() if stored is not None and writing else None
    fleetindex.attach(model, config.clock(), stored, journal)
    staged = rollout_index.attach(model, config.clock())
    writer: ReportWriter | None = None
    follower: Follower | None = None
    on_close: list[Callable[[], object]] = []
    if isinstance(role, Writing):
        counter = role.counter
        writer = ReportWriter(
            database.connect(writer=True, replica=replica),
            model,
            clock=config.clock,
            retention=config.retention,
            journal=journal,
            on_commit=counter.bump if counter is not None else None,
        )
        writer.start()
        forget: Callable[[str], object] = writer.forget
        poll_others: Callable[[], object] | None = sync.poll if loader.shared else None
        on_close.append(sync.close)
    else:
        follower = Follower(sync, role.counter)
        forget = model.forget
        poll_others = follower.poll  # a safety net on SQLite, the other replicas on PostgreSQL
        on_close.append(follower.close)
    credentials = Credentials(database.connect())
    forgets = ForgetWatch(database.connect(), forget)

    def refresh() -> None:  # tokens first: a forgotten cluster's reports are refused before it is dropped
        credentials.reload()
        forgets.poll()

    tasks = [Task("reload_credentials", CREDENTIALS_REFRESH_SECONDS, refresh)]
    if writer is not None:
        checkpointer = database.connect()
        tasks.append(Task("wal_checkpoint", CHECKPOINT_SECONDS, checkpointer.checkpoint))
        on_close += [checkpointer.checkpoint, checkpointer.close]
    if poll_others is not None:
        tasks.append(Task("replica_sync", SYNC_SECONDS, poll_others))
    maintenance = Maintenance(tasks, on_close=[forgets.close, *on_close])
    maintenance.start()
    log.info(
        "hub_loaded",
        database=database.kind,
        replica=replica,
        role="writer" if writer is not None else "reader",
        clusters=len(model),
        seconds=round(time.perf_counter() - started, 3),
    )
    return HubContext(
        config=config,
        model=model,
        writer=writer,
        metrics=Metrics(),
        credentials=credentials,
        maintenance=maintenance,
        readers=ReadConnections(database),
        read_pool=ThreadPoolExecutor(READ_THREADS, thread_name_prefix="hub-read"),
        read_cache=ReadCache(config.read_cache_seconds),
        # opened once here, never lazily from a read thread
        rollouts=RolloutBook(config.database, view_seconds=config.rollout_view_seconds),
        rollout_index=staged,
        follower=follower,
    )


def close_context(ctx: HubContext) -> None:
    ctx.read_pool.shutdown(wait=True)
    if ctx.writer is not None:
        ctx.writer.close()
    ctx.maintenance.close()
    ctx.credentials.close()
    ctx.readers.close()
    ctx.rollouts.close()


def _load(app: Starlette, config: HubConfig, role: Role) -> None:
    """The start-up load, in its own thread: the port is open and answering 503 meanwhile."""
    gc.disable()  # 100k clusters make millions of objects: collections during the load only cost time
    try:
        ctx = open_context(config, role)
    finally:
        gc.enable()
    app.state.hub = ctx
    # The loaded fleet and the imported modules need no more scans by the collector. No collection
    # first: the load leaves next to no cyclic garbage, and a pass over 100k clusters' objects
    # costs a quarter of a CPU-second.
    gc.freeze()
    # A report's objects are freed by reference counting; what a young-generation collection finds
    # is almost never garbage, and at the default threshold it ran ~14 times per 100 reports.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)
    log.info("hub_started", database=config.database.describe(), clusters=len(ctx.model))
    if isinstance(role, Reading):
        role.on_ready()


async def _elsewhere(request: Request) -> Response:
    """A write that reached a reader process on a kept-alive connection: a new connection goes to
    the main process (hub.dispatch), so close this one and have the client retry at once."""
    return JSONResponse(
        {"error": "this hub process only serves reads; reconnect and retry"},
        status_code=503,
        headers={"Connection": "close", "Retry-After": "0", "Cache-Control": "no-store"},
    )


class CatchUp:
    """ASGI middleware of a reader process: before a request, apply what the writer has committed
    since the last one (in the read pool, off the event loop), so an acknowledged report is seen."""

    def __init__(self, app: ASGIApp, owner: Starlette) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: HubContext | None = getattr(self.owner.state, "hub", None)
        if scope["type"] == "http" and ctx is not None and ctx.follower is not None and ctx.follower.behind():
            await ctx.off_loop(ctx.follower.catch_up)
        await self.app(scope, receive, send)


def create_app(config: HubConfig, role: Role | None = None) -> Starlette:
    role = role or Writing()
    loading = Loading()
    writes: Callable[[Request], Awaitable[Response]] | None = (
        _elsewhere if isinstance(role, Reading) else None
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_loop_exception_handler(asyncio.get_running_loop())
        config.database.connect().close()  # a database this hub cannot use stops it at once
        loading.start(lambda: _load(app, config, role))
        try:
            yield
        finally:
            if loading.wait():
                close_context(app.state.hub)
            log.info("hub_stopped")

    routes = [
        Route("/", web.index),
        Route("/clusters/{name}", web.cluster),
        Route("/bundles/{name:path}", web.bundle),
        Route("/api/v1/reports", writes or api.ingest, methods=["POST"]),
        Route("/api/v1/summary", api.summary),
        Route("/api/v1/clusters", api.clusters),
        Route("/api/v1/clusters/{name}", api.cluster),
        Route("/api/v1/bundles", api.bundles),
        Route("/api/v1/bundles/{name:path}", api.bundle),
        Route("/api/v1/rollout/gates", writes or rollout_api.gates, methods=["POST"]),
        Route("/api/v1/rollouts", rollout_api.rollouts),
        Route("/api/v1/rollouts/{bundle:path}", rollout_api.rollout),
        Route("/api/v1/openapi.json", api.openapi),
        *views_web.ROUTES,
        *views_api.ROUTES,
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(Warmup, loading=loading), Middleware(ETags)]
    if writes is None:  # reports are taken here: straight to ingest, past the layers pages need
        middleware.insert(0, Middleware(IngestFirst, loading=loading))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.loading = loading  # hub.serving starts the reader processes once this process is loaded
    if isinstance(role, Reading):
        app.add_middleware(CatchUp, owner=app)
    return app
