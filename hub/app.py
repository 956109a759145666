"""The hub's ASGI application: routes, and the start-up/shut-down of its store, writer and readers."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from hub import api, fleetindex, history_store, rollout_api, rollout_index, views_api, views_web, web
from hub.context import READ_THREADS, HubConfig, HubContext, ReadConnections
from hub.credentials import Credentials
from hub.etag import ETags
from hub.maintenance import ForgetWatch, Maintenance, Task
from hub.metrics import Metrics
from hub.ratelog import install_loop_exception_handler
from hub.readcache import ReadCache
from hub.readmodel import ReadModel
from hub.replicas import SYNC_SECONDS, ReplicaSync, new_replica_id
from hub.rollout_book import RolloutBook
from hub.security import SecurityHeaders
from hub.warmup import Loading, Warmup
from hub.writer import ReportWriter

log = structlog.get_logger("hub")

CREDENTIALS_REFRESH_SECONDS = 2.0  # a revoked token or a forgotten cluster takes effect within this time
CHECKPOINT_SECONDS = 1.0
GC_YOUNG_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def open_context(config: HubConfig) -> HubContext:
    """Open (creating and migrating) the store, load the read model and start the writer."""
    started = time.perf_counter()
    database = config.database
    replica = new_replica_id()
    loader = database.connect()
    sync = ReplicaSync(database.connect(), replica, config.clock)  # its mark first, then the load
    summaries = loader.load_summaries()
    stored = history_store.load(loader, config.clock())  # None on PostgreSQL (not kept there yet)
    loader.close()
    model = ReadModel(config.thresholds, summaries, config.clock())
    sync.attach(model)
    del summaries
    journal = history_store.Journal() if stored is not None else None
    fleetindex.attach(model, config.clock(), stored, journal)
    staged = rollout_index.attach(model, config.clock())
    writer = ReportWriter(
        database.connect(writer=True, replica=replica),
        model,
        clock=config.clock,
        retention=config.retention,
        journal=journal,
    )
    writer.start()
    credentials = Credentials(database.connect())
    forgets = ForgetWatch(database.connect(), writer.forget)
    checkpointer = database.connect()

    def refresh() -> None:  # tokens first: a forgotten cluster's reports are refused before it is dropped
        credentials.reload()
        forgets.poll()

    tasks = [
        Task("reload_credentials", CREDENTIALS_REFRESH_SECONDS, refresh),
        Task("wal_checkpoint", CHECKPOINT_SECONDS, checkpointer.checkpoint),
    ]
    if loader.shared:
        tasks.append(Task("replica_sync", SYNC_SECONDS, sync.poll))
    maintenance = Maintenance(
        tasks, on_close=[forgets.close, sync.close, checkpointer.checkpoint, checkpointer.close]
    )
    maintenance.start()
    log.info(
        "hub_loaded",
        database=database.kind,
        replica=replica,
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
    )


def close_context(ctx: HubContext) -> None:
    ctx.read_pool.shutdown(wait=True)
    ctx.writer.close()
    ctx.maintenance.close()
    ctx.credentials.close()
    ctx.readers.close()
    ctx.rollouts.close()


def _load(app: Starlette, config: HubConfig) -> None:
    """The start-up load, in its own thread: the port is open and answering 503 meanwhile."""
    gc.disable()  # 100k clusters make millions of objects: collections during the load only cost time
    try:
        ctx = open_context(config)
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


def create_app(config: HubConfig) -> Starlette:
    loading = Loading()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_loop_exception_handler(asyncio.get_running_loop())
        config.database.connect().close()  # a database this hub cannot use stops it at once
        loading.start(lambda: _load(app, config))
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
        Route("/api/v1/reports", api.ingest, methods=["POST"]),
        Route("/api/v1/summary", api.summary),
        Route("/api/v1/clusters", api.clusters),
        Route("/api/v1/clusters/{name}", api.cluster),
        Route("/api/v1/bundles", api.bundles),
        Route("/api/v1/bundles/{name:path}", api.bundle),
        Route("/api/v1/rollout/gates", rollout_api.gates, methods=["POST"]),
        Route("/api/v1/rollouts", rollout_api.rollouts),
        Route("/api/v1/rollouts/{bundle:path}", rollout_api.rollout),
        Route("/api/v1/openapi.json", api.openapi),
        *views_web.ROUTES,
        *views_api.ROUTES,
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(Warmup, loading=loading), Middleware(ETags)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
