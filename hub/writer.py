"""The single ingest writer: a thread that commits queued reports in groups.

Request handlers enqueue a validated report and await its outcome; the writer drains whatever is
queued (up to ``max_batch``), writes it in one transaction, commits, updates the fleet index and
only then resolves the waiting requests. One fsync serves a whole group.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass

import structlog

from hub import store
from hub.fleet import FleetIndex
from hub.model import ClusterSummary

log = structlog.get_logger("hub.writer")

PRUNE_EVERY = 8  # cut a cluster's stored history back once per this many of its reports


@dataclass(slots=True)
class _Job:
    pending: store.Pending
    future: asyncio.Future[store.Outcome]
    loop: asyncio.AbstractEventLoop


class WriterClosed(RuntimeError):
    pass


class ReportWriter:
    def __init__(self, conn: sqlite3.Connection, fleet: FleetIndex, max_batch: int = 500) -> None:
        self._conn = conn
        self._fleet = fleet
        self._max_batch = max_batch
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hub-writer", daemon=True)
        self._closed = False
        self.batches = 0
        self._since_prune: Counter[str] = Counter()

    def start(self) -> None:
        self._thread.start()

    async def write(self, pending: store.Pending) -> store.Outcome:
        if self._closed:
            raise WriterClosed("the hub is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[store.Outcome] = loop.create_future()
        self._queue.put(_Job(pending, future, loop))
        return await future

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            stop = False
            while len(jobs) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                jobs.append(job)
            self._commit(jobs)
            if stop:
                return

    def _current(self, jobs: list[_Job]) -> dict[str, ClusterSummary]:
        """The current summaries of the clusters in this group (not a copy of the whole fleet)."""
        current = {}
        for job in jobs:
            summary = self._fleet.get(job.pending.report.cluster)
            if summary is not None:
                current[summary.name] = summary
        return current

    def _due_for_pruning(self, jobs: list[_Job]) -> set[str]:
        """Clusters with PRUNE_EVERY reports since their history was last cut back (amortised pruning)."""
        due = set()
        for job in jobs:
            cluster = job.pending.report.cluster
            self._since_prune[cluster] += 1
            if self._since_prune[cluster] >= PRUNE_EVERY:
                self._since_prune[cluster] = 0
                due.add(cluster)
        return due

    def _commit(self, jobs: list[_Job]) -> None:
        prune = self._due_for_pruning(jobs)
        try:
            outcomes = store.write_batch(self._conn, [j.pending for j in jobs], self._current(jobs), prune)
        except Exception as exc:  # the whole group failed and nothing was stored: tell every sender
            log.error("report_batch_failed", size=len(jobs), error=str(exc))
            for job in jobs:
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
            return
        self.batches += 1
        resolutions: dict[
            asyncio.AbstractEventLoop, list[tuple[asyncio.Future[store.Outcome], store.Outcome]]
        ] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome.summary is not None:
                self._fleet.put(outcome.summary)
            else:
                self._fleet.touch(job.pending.report.cluster, job.pending.received_at)
            resolutions.setdefault(job.loop, []).append((job.future, outcome))
        for loop, results in resolutions.items():  # one wake-up of the event loop per group
            loop.call_soon_threadsafe(_resolve_all, results)


def _resolve_all(results: list[tuple[asyncio.Future[store.Outcome], store.Outcome]]) -> None:
    for future, outcome in results:
        if not future.done():
            future.set_result(outcome)


def _fail(future: asyncio.Future[store.Outcome], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
