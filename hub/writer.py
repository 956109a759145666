"""The single ingest writer: a thread that commits queued reports in groups.

Request handlers enqueue a validated report and await its outcome; the writer drains whatever is
queued (up to ``max_batch``), writes it in one transaction, commits, updates the read model and
only then resolves the waiting requests. One fsync serves a whole group.

The same thread does the store's upkeep between groups, so no other connection ever competes for
SQLite's write lock: it sweeps the history of a slice of clusters (age and count retention, also
for clusters that stopped reporting), lets the store bound itself (SQLite truncates its WAL past
its limit), and applies forgets. On a shared database (PostgreSQL replicas) the store decides
what is current, and the read model only ever moves forward (``newer_only``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from hub import ratelog
from hub.database import ERRORS, Store
from hub.history_store import Journal
from hub.model import ClusterSummary
from hub.readmodel import ReadModel
from hub.reportstore import Outcome, Pending, Retention

log = structlog.get_logger("hub.writer")

PRUNE_EVERY = 8  # cut a cluster's stored history back once per this many of its reports
UPKEEP_SECONDS = 0.5
SWEEP_PER_UPKEEP = 100  # clusters whose history is swept per upkeep tick (an idle writer)
# A busy writer sweeps a few clusters in each group's own transaction instead (on SQLite), as often
# as keeps the same pace: no transaction of its own, so no pause of ingest every tick.
SWEEP_PER_GROUP = 4
SWEEP_GROUP_SECONDS = UPKEEP_SECONDS * SWEEP_PER_GROUP / SWEEP_PER_UPKEEP


@dataclass(slots=True)
class _Job:
    pending: Pending
    future: asyncio.Future[Outcome]
    loop: asyncio.AbstractEventLoop


_Task = Callable[[Store], None]  # work run on the writer thread (forgets)


class WriterClosed(RuntimeError):
    pass


class ReportWriter:
    def __init__(
        self,
        conn: Store,
        model: ReadModel,
        *,
        clock: Callable[[], float] = time.time,
        retention: Retention | None = None,
        max_batch: int = 500,
        journal: Journal | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._conn = conn
        self._model = model
        self._clock = clock
        self._retention = retention or Retention()
        self._max_batch = max_batch
        self._journal = journal  # the fleet's history and error sightings, saved between groups
        self._on_commit = on_commit  # after each commit, before any report in it is acknowledged
        self._queue: queue.Queue[_Job | _Task | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="hub-writer", daemon=True)
        self._closed = False
        self.batches = 0
        self._since_prune: Counter[str] = Counter()
        self._sweep: list[str] = []  # the clusters of the current sweep, from ``_swept`` on
        self._swept = 0
        self._next_upkeep = 0.0
        self._next_group_sweep = 0.0

    def start(self) -> None:
        self._thread.start()

    async def write(self, pending: Pending) -> Outcome:
        if self._closed:
            raise WriterClosed("the hub is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(_Job(pending, future, loop))
        return await future

    def forget(self, name: str) -> None:
        """Drop ``name`` from memory and delete what is left of it, in order with the reports."""

        def run(conn: Store) -> None:
            conn.purge_cluster(name)
            self._since_prune.pop(name, None)
            if self._model.forget(name):
                log.info("cluster_forgotten", cluster=name)

        self._queue.put(run)

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=UPKEEP_SECONDS)
            except queue.Empty:
                self._upkeep(idle=True)
                continue
            if first is None:
                self._save_journal()
                return
            jobs: list[_Job] = []
            stop = False
            item: _Job | _Task | None = first
            while True:
                if item is None:
                    stop = True
                    break
                if isinstance(item, _Job):
                    jobs.append(item)
                else:  # a task runs after the reports queued before it
                    self._commit(jobs)
                    jobs = []
                    self._safely(item)
                if len(jobs) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._commit(jobs)
            self._upkeep()
            if stop:
                self._save_journal()
                return

    def _safely(self, task: _Task) -> None:
        try:
            task(self._conn)
        except ERRORS as exc:
            log.error("writer_task_failed", error=str(exc))

    def _current(self, jobs: list[_Job]) -> dict[str, ClusterSummary]:
        """The current summaries of the clusters in this group (not a copy of the whole fleet)."""
        current = {}
        for job in jobs:
            view = self._model.current(job.pending.report.cluster)
            if view is not None:
                current[view.name] = view
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

    def _sweep_next(self, count: int) -> list[str]:
        """The next ``count`` clusters of the history sweep (a new round starts over the fleet)."""
        if self._swept >= len(self._sweep):
            self._sweep, self._swept = self._model.names(), 0
        chunk = self._sweep[self._swept : self._swept + count]
        self._swept += count
        return chunk

    def _group_sweep(self) -> list[str]:
        if self._conn.shared or time.monotonic() < self._next_group_sweep:
            return []  # replicas sweep on their own (their batches lock rows in name order only)
        self._next_group_sweep = time.monotonic() + SWEEP_GROUP_SECONDS
        return self._sweep_next(SWEEP_PER_GROUP)

    def _commit(self, jobs: list[_Job]) -> None:
        if not jobs:
            return
        prune = self._due_for_pruning(jobs).union(self._group_sweep())
        try:
            outcomes = self._conn.write_batch(
                [j.pending for j in jobs], self._current(jobs), prune, self._retention
            )
        except Exception as exc:  # the whole group failed and nothing was stored: tell every sender
            log.error("report_batch_failed", size=len(jobs), error=str(exc))
            for job in jobs:
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
            return
        self.batches += 1
        if self._on_commit is not None:
            self._on_commit()
        now = self._clock()
        resolutions: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            if outcome.summary is not None:
                self._model.put(outcome.summary, now, newer_only=self._conn.shared)
            else:
                self._model.touch(job.pending.report.cluster, job.pending.received_at, now)
            resolutions.setdefault(job.loop, []).append((job.future, outcome))
        for loop, results in resolutions.items():  # one wake-up of the event loop per group
            loop.call_soon_threadsafe(_resolve_all, results)

    def _upkeep(self, *, idle: bool = False) -> None:
        """Between groups, at most every UPKEEP_SECONDS: bound the WAL, save the journal, and sweep a
        slice of histories where groups do not (an idle writer, or replicas)."""
        if time.monotonic() < self._next_upkeep:
            return
        self._next_upkeep = time.monotonic() + UPKEEP_SECONDS
        try:
            chunk = self._sweep_next(SWEEP_PER_UPKEEP) if idle or self._conn.shared else []
            if chunk:
                cutoff = self._clock() - self._retention.days * 86400
                self._conn.prune_history(chunk, self._retention, cutoff)
            self._conn.upkeep()
        except ERRORS as exc:
            log.warning("writer_upkeep_failed", error=str(exc))
        self._save_journal()

    def _save_journal(self) -> None:
        if self._journal is None:
            return
        try:
            self._journal.save(self._conn, self._clock())
        except ERRORS as exc:
            ratelog.event("history_save_failed", error=str(exc))


def _resolve_all(results: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for future, outcome in results:
        if not future.done():
            future.set_result(outcome)


def _fail(future: asyncio.Future[Outcome], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
