"""Periodic background work of the hub: reloading credentials, checkpointing the SQLite WAL.

The ingest writer's connection never checkpoints (``wal_autocheckpoint=0``): a checkpoint there
would stall a whole group of waiting reports. This thread runs passive checkpoints instead, which
proceed alongside the writer.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger("hub.maintenance")


@dataclass(frozen=True)
class Task:
    name: str
    every_seconds: float
    run: Callable[[], object]


class Maintenance:
    def __init__(self, tasks: list[Task], tick: float = 0.25) -> None:
        self._tasks = tasks
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hub-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        due = {task.name: time.monotonic() + task.every_seconds for task in self._tasks}
        while not self._stop.wait(self._tick):
            for task in self._tasks:
                if time.monotonic() < due[task.name]:
                    continue
                due[task.name] = time.monotonic() + task.every_seconds
                try:
                    task.run()
                except sqlite3.Error as exc:
                    log.warning("maintenance_failed", task=task.name, error=str(exc))
