"""The SQLite backend of :class:`hub.database.Store`: one WAL connection, the SQL in ``hub.store``,
``hub.reportstore`` and ``hub.rollout_store``.

One hub process writes a SQLite database (no replicas); :meth:`SqliteStore.changes_since` is how
its reader processes (:mod:`hub.readsync`) follow what that writer commits.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from hub import prune_allowances, ratelog, reportstore, rollout_store, store
from hub.contract import StatusReport
from hub.database import Change, Forgotten, TokenInfo
from hub.model import ClusterSummary, HistoryEntry
from hub.reportstore import Outcome, Pending, Retention
from hub.rollout_model import Memory

log = structlog.get_logger("hub.store")

TRUNCATE_RETRY_SECONDS = 2.0  # after a WAL truncation found a reader in the way


class SqliteStore:
    shared = False

    def __init__(self, conn: sqlite3.Connection, data_dir: Path, *, writer: bool = False) -> None:
        self.conn = conn
        self._data_dir = data_dir
        self._next_truncate = 0.0
        self._stamp = reportstore.last_stamp(conn) if writer else 0  # the last batch's change stamp

    @classmethod
    def open(cls, data_dir: Path, *, create: bool = True, writer: bool = False) -> SqliteStore:
        conn = store.connect(data_dir, create=create, autocheckpoint=not writer)
        rollout_store.ensure_schema(conn)
        prune_allowances.ensure(conn)
        return cls(conn, data_dir, writer=writer)

    def close(self) -> None:
        self.conn.close()

    def write_batch(
        self,
        batch: Sequence[Pending],
        current: dict[str, ClusterSummary],
        prune: Iterable[str],
        retention: Retention,
    ) -> list[Outcome]:
        self._stamp += 1  # a failed batch leaves a gap, which readers do not mind
        return reportstore.write_batch(self.conn, batch, current, prune, retention, self._stamp)

    def prune_history(self, clusters: Iterable[str], retention: Retention, cutoff: float) -> int:
        with store.transaction(self.conn):
            return reportstore.prune_history(self.conn, clusters, retention, cutoff)

    def purge_cluster(self, name: str) -> None:
        reportstore.purge_cluster(self.conn, name)

    def checkpoint(self) -> None:
        """The maintenance thread's checkpoint: copy the WAL into the database without blocking the
        writer; when the log in use passes WAL_RESTART_BYTES, make it start over. Under sustained
        ingest a passive checkpoint never finds the log fully copied between two commits, so the
        log would never start over by itself and the file would grow; restarting right after a
        passive checkpoint leaves only the frames written during it to copy, so the writer waits
        milliseconds. The file is then reused in place (and cut to WAL_SIZE_LIMIT when larger)."""
        in_use = store.checkpoint(self.conn)
        if in_use > store.WAL_RESTART_BYTES and not store.restart_wal(self.conn):
            ratelog.event("wal_restart_deferred", bytes=in_use)  # a reader, or a busy writer: next time

    def upkeep(self) -> None:
        """The writer's safety net: past WAL_SIZE_LIMIT (a long read held every checkpoint back, or
        the maintenance thread could not restart the log), empty the WAL file."""
        if time.monotonic() < self._next_truncate:
            return
        size = store.wal_bytes(self._data_dir)
        if size <= store.WAL_SIZE_LIMIT:
            return
        started = time.perf_counter()
        done = store.truncate_wal(self.conn)
        seconds = round(time.perf_counter() - started, 3)
        if done:
            log.info("wal_truncated", bytes=size, seconds=seconds)
        else:  # a reader holds an old snapshot: try again in a while, never wait for it here
            self._next_truncate = time.monotonic() + TRUNCATE_RETRY_SECONDS
            ratelog.event("wal_truncate_deferred", bytes=size, seconds=seconds)

    def load_summaries(self) -> list[ClusterSummary]:
        return reportstore.load_summaries(self.conn)

    def load_report(self, cluster: str, sequence: int) -> StatusReport | None:
        return reportstore.load_report(self.conn, cluster, sequence)

    def history(self, cluster: str, limit: int = 100) -> list[HistoryEntry]:
        return reportstore.history(self.conn, cluster, limit)

    def count_reports(self) -> int:
        return reportstore.count_reports(self.conn)

    def storage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._data_dir.glob(f"{store.DB_NAME}*") if p.is_file())

    def changes_since(self, mark: object, me: str) -> tuple[list[Change], object]:
        """What the writer committed after ``mark`` (None: nothing, just the mark to start from)."""
        if mark is None:
            return [], reportstore.last_stamp(self.conn)
        assert isinstance(mark, int)
        return reportstore.changed_since(self.conn, mark)

    def create_tokens(self, kind: str, owners: Iterable[str]) -> dict[str, str]:
        return store.create_tokens(self.conn, kind, owners)

    def list_tokens(self, kind: str) -> list[TokenInfo]:
        return store.list_tokens(self.conn, kind)

    def revoke_tokens(self, kind: str, owner: str, token_id: str | None = None) -> int:
        return store.revoke_tokens(self.conn, kind, owner, token_id)

    def all_tokens(self, kind: str) -> dict[str, tuple[str, str]]:
        return store.all_tokens(self.conn, kind)

    def tokens_mark(self) -> object:
        return store.tokens_mark(self.conn)

    def lookup_token(self, kind: str, token_id: str) -> tuple[str, str] | None:
        return store.lookup_token(self.conn, kind, token_id)

    def forget_cluster(self, name: str, *, keep_tokens: bool = False) -> Forgotten:
        return store.forget_cluster(self.conn, name, keep_tokens=keep_tokens)

    def forgotten_since(self, after_id: int) -> list[tuple[int, str]]:
        return store.forgotten_since(self.conn, after_id)

    def last_forgotten_id(self) -> int:
        return store.last_forgotten_id(self.conn)

    def load_rollouts(self) -> list[Memory]:
        return rollout_store.load(self.conn)

    def load_rollout(self, bundle: str, commit: str) -> Memory | None:
        return rollout_store.load_one(self.conn, bundle, commit)

    def save_rollout(self, memory: Memory) -> None:
        rollout_store.save(self.conn, memory)

    def rollout_pauses(self) -> dict[str, tuple[float, str]]:
        return rollout_store.pauses(self.conn)

    def pause_rollout(self, bundle: str, actor: str) -> bool:
        return rollout_store.pause(self.conn, bundle, actor)

    def resume_rollout(self, bundle: str) -> bool:
        return rollout_store.resume(self.conn, bundle)

    def allow_prune(self, cluster: str, prune_id: str, actor: str) -> bool:
        return prune_allowances.allow(self.conn, cluster, prune_id, actor)

    def take_prune(self, cluster: str, prune_id: str) -> str | None:
        return prune_allowances.take(self.conn, cluster, prune_id)
