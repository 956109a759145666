"""What request handlers share: configuration, the read connection, the writer, the index, metrics."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hub.aggregate import ClusterView, evaluate
from hub.connectivity import Thresholds
from hub.credentials import Credentials
from hub.fleet import FleetIndex
from hub.maintenance import Maintenance
from hub.metrics import Metrics
from hub.writer import ReportWriter

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class HubConfig:
    data_dir: Path
    public_read: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_body: int = DEFAULT_MAX_BODY
    clock: Callable[[], float] = time.time


@dataclass
class HubContext:
    config: HubConfig
    reader: sqlite3.Connection
    writer: ReportWriter
    fleet: FleetIndex
    metrics: Metrics
    credentials: Credentials
    maintenance: Maintenance
    checkpointer: sqlite3.Connection
    reader_lock: threading.Lock

    def views(self) -> list[ClusterView]:
        """Every cluster with its connectivity evaluated now."""
        return evaluate(self.fleet.snapshot(), self.config.clock(), self.config.thresholds)

    def view(self, name: str) -> ClusterView | None:
        summary = self.fleet.get(name)
        if summary is None:
            return None
        return evaluate([summary], self.config.clock(), self.config.thresholds)[0]
