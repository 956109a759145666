"""What request handlers share: configuration, the read model, the writer, read connections, metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hub.connectivity import Thresholds
from hub.credentials import Credentials
from hub.database import Database, Store
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.readcache import DEFAULT_MAX_AGE, ReadCache
from hub.readmodel import ReadModel
from hub.readsync import Follower
from hub.reportstore import Retention
from hub.rollout_book import DEFAULT_VIEW_SECONDS, RolloutBook
from hub.rollout_index import RolloutIndex
from hub.writer import ReportWriter

DEFAULT_MAX_BODY = 1024 * 1024
READ_THREADS = 2  # reads run here, off the event loop that accepts reports; more would only fight it

T = TypeVar("T")


@dataclass(frozen=True)
class HubConfig:
    data_dir: Path  # SQLite's directory (not used when database_url names PostgreSQL)
    public_read: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_body: int = DEFAULT_MAX_BODY
    clock: Callable[[], float] = time.time
    retention: Retention = field(default_factory=Retention)
    read_cache_seconds: float = DEFAULT_MAX_AGE  # how stale a page or API answer may be (0: never)
    rollout_view_seconds: float = DEFAULT_VIEW_SECONDS  # how old a rollout's evaluation may be (0: never)
    database_url: str | None = None  # PostgreSQL instead of SQLite in data_dir (hub.database)

    @property
    def database(self) -> Database:
        return Database(data_dir=None if self.database_url else self.data_dir, url=self.database_url)


class ReadConnections:
    """One connection per read thread (SQLite WAL readers never wait for the writer, nor it for them)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._local = threading.local()
        self._all: list[Store] = []
        self._lock = threading.Lock()

    def get(self) -> Store:
        conn: Store | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._database.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


@dataclass
class HubContext:
    config: HubConfig
    model: ReadModel
    writer: ReportWriter | None  # None in a reader process (hub.readworker), which only reads
    metrics: Metrics
    credentials: Credentials
    maintenance: Maintenance
    readers: ReadConnections
    read_pool: ThreadPoolExecutor
    read_cache: ReadCache
    rollouts: RolloutBook
    rollout_index: RolloutIndex
    follower: Follower | None = None  # a reader process's way of staying current (hub.readsync)

    def now(self) -> float:
        return self.config.clock()

    def staged(self) -> RolloutIndex:
        """The staged-rollout members, with connectivity brought up to now (for the rollout book)."""
        self.model.advance(self.now())
        return self.rollout_index

    async def off_loop(self, work: Callable[[], T]) -> T:
        """Run a read in the read pool: the event loop stays free for ingest."""
        return await asyncio.get_running_loop().run_in_executor(self.read_pool, work)
