"""Periodic background work of the hub: reloading credentials and forgets, checkpointing the WAL.

The ingest writer's connection never checkpoints on its own (``wal_autocheckpoint=0``): a
checkpoint there would stall a whole group of waiting reports. This thread runs passive
checkpoints instead, which proceed alongside the writer (the writer truncates the WAL itself, and
only when it has grown past its limit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from hub.database import ERRORS, Store

log = structlog.get_logger("hub.maintenance")


@dataclass(frozen=True)
class Task:
    name: str
    every_seconds: float
    run: Callable[[], object]


class Maintenance:
    def __init__(
        self, tasks: list[Task], tick: float = 0.25, on_close: Sequence[Callable[[], object]] = ()
    ) -> None:
        self._tasks = tasks
        self._tick = tick
        self._on_close = on_close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hub-maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        for step in self._on_close:
            try:
                step()
            except ERRORS as exc:
                log.warning("maintenance_close_failed", error=str(exc))

    def _loop(self) -> None:
        due = {task.name: time.monotonic() + task.every_seconds for task in self._tasks}
        while not self._stop.wait(self._tick):
            for task in self._tasks:
                if time.monotonic() < due[task.name]:
                    continue
                due[task.name] = time.monotonic() + task.every_seconds
                try:
                    task.run()
                except ERRORS as exc:
                    log.warning("maintenance_failed", task=task.name, error=str(exc))


class ForgetWatch:
    """Hands the clusters forgotten with the CLI (logged in the store) to the running hub.

    Log ids are handed out before commit, so two forgets at once may become visible out of order:
    each poll looks back ``LOOK_BACK`` ids and applies every id once.
    """

    LOOK_BACK = 1000

    def __init__(self, conn: Store, forget: Callable[[str], object]) -> None:
        self._conn = conn
        self._forget = forget
        self._last = conn.last_forgotten_id()  # forgets before this start are already applied
        self._floor = self._last
        self._applied: set[int] = set()

    def poll(self) -> None:
        for row_id, cluster in self._conn.forgotten_since(max(self._floor, self._last - self.LOOK_BACK)):
            if row_id in self._applied:
                continue
            self._forget(cluster)
            self._applied.add(row_id)
            self._last = max(self._last, row_id)
        self._applied = {i for i in self._applied if i > self._last - self.LOOK_BACK}

    def close(self) -> None:
        self._conn.close()
