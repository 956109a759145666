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

from hub import api, fleetindex, rollout_api, views_api, views_web, web
from hub.context import READ_THREADS, HubConfig, HubContext, ReadConnections
from hub.credentials import Credentials
from hub.etag import ETags
from hub.maintenance import ForgetWatch, Maintenance, Task
from hub.metrics import Metrics
from hub.ratelog import install_loop_exception_handler
from hub.readcache import ReadCache
from hub.readmodel import ReadModel
from hub.replicas import SYNC_SECONDS, ReplicaSync, new_replica_id
from hub.security import SecurityHeaders
from hub.writer import ReportWriter

log = structlog.get_logger("hub")

CREDENTIALS_REFRESH_SECONDS = 2.0  # a revoked token or a forgotten cluster takes effect within this time
CHECKPOINT_SECONDS = 1.0


def open_context(config: HubConfig) -> HubContext:
    """Open (creating and migrating) the store, load the read model and start the writer."""
    started = time.perf_counter()
    database = config.database
    replica = new_replica_id()
    loader = database.connect()
    sync = ReplicaSync(database.connect(), replica, config.clock)  # its mark first, then the load
    summaries = loader.load_summaries()
    loader.close()
    model = ReadModel(config.thresholds, summaries, config.clock())
    sync.attach(model)
    del summaries
    fleetindex.attach(model, config.clock())
    writer = ReportWriter(
        database.connect(writer=True, replica=replica), model, clock=config.clock, retention=config.retention
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
    )


def close_context(ctx: HubContext) -> None:
    ctx.read_pool.shutdown(wait=True)
    ctx.writer.close()
    ctx.maintenance.close()
    ctx.credentials.close()
    ctx.readers.close()


def create_app(config: HubConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_loop_exception_handler(asyncio.get_running_loop())
        ctx = open_context(config)
        app.state.hub = ctx
        gc.collect()
        gc.freeze()  # the loaded fleet and the imported modules need no more scans by the collector
        log.info("hub_started", database=config.database.describe(), clusters=len(ctx.model))
        try:
            yield
        finally:
            close_context(ctx)
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
    middleware = [Middleware(SecurityHeaders), Middleware(ETags)]
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
