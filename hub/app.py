"""The hub's ASGI application: routes, and the start-up/shut-down of its store and writer."""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.routing import Route

from hub import api, rollout_api, store, web
from hub.context import HubConfig, HubContext
from hub.credentials import Credentials
from hub.fleet import FleetIndex
from hub.maintenance import Maintenance, Task
from hub.metrics import Metrics
from hub.writer import ReportWriter

log = structlog.get_logger("hub")

CREDENTIALS_REFRESH_SECONDS = 2.0  # a revoked token stops working within this time
CHECKPOINT_SECONDS = 1.0


def open_context(config: HubConfig) -> HubContext:
    """Open (creating and migrating) the store, load the fleet index and start the writer."""
    reader = store.connect(config.data_dir)
    fleet = FleetIndex(store.load_summaries(reader))
    writer = ReportWriter(store.connect(config.data_dir, autocheckpoint=False), fleet)
    writer.start()
    reader_lock = threading.Lock()
    credentials = Credentials(reader, reader_lock)
    checkpointer = store.connect(config.data_dir)
    maintenance = Maintenance(
        [
            Task("reload_credentials", CREDENTIALS_REFRESH_SECONDS, credentials.reload),
            Task("wal_checkpoint", CHECKPOINT_SECONDS, lambda: store.checkpoint(checkpointer)),
        ]
    )
    maintenance.start()
    return HubContext(
        config=config,
        reader=reader,
        writer=writer,
        fleet=fleet,
        metrics=Metrics(),
        credentials=credentials,
        maintenance=maintenance,
        checkpointer=checkpointer,
        reader_lock=reader_lock,
    )


def close_context(ctx: HubContext) -> None:
    ctx.maintenance.close()
    ctx.writer.close()
    store.checkpoint(ctx.checkpointer)
    ctx.checkpointer.close()
    ctx.reader.close()


def create_app(config: HubConfig) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx = open_context(config)
        app.state.hub = ctx
        gc.collect()
        gc.freeze()  # the loaded fleet and the imported modules need no more scans by the collector
        log.info("hub_started", data_dir=str(config.data_dir), clusters=len(ctx.fleet.snapshot()))
        try:
            yield
        finally:
            close_context(ctx)
            log.info("hub_stopped")

    routes = [
        Route("/", web.index),
        Route("/clusters/{name}", web.cluster),
        Route("/bundles/{name}", web.bundle),
        Route("/api/v1/reports", api.ingest, methods=["POST"]),
        Route("/api/v1/summary", api.summary),
        Route("/api/v1/clusters", api.clusters),
        Route("/api/v1/clusters/{name}", api.cluster),
        Route("/api/v1/bundles", api.bundles),
        Route("/api/v1/bundles/{name}", api.bundle),
        Route("/api/v1/rollout/gates", rollout_api.gates, methods=["POST"]),
        Route("/api/v1/rollouts", rollout_api.rollouts),
        Route("/api/v1/rollouts/{bundle}", rollout_api.rollout),
        Route("/api/v1/openapi.json", api.openapi),
        Route("/healthz", api.healthz),
        Route("/metrics", api.metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
