"""The PostgreSQL backend of :class:`hub.database.Store`: credentials, forgetting and rollouts here,
reports in ``hub.pg_reports``, schema in ``hub.pg_schema``.

Several hub replicas may share the database (``shared``): the token table is reloaded by every
replica every few seconds, forgets are a log every replica follows, pauses are read on each gate
question, and cluster states come from :meth:`PgStore.changes_since`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
import structlog

from hub import pg_history, pg_reports, pg_schema, tokens
from hub.contract import StatusReport
from hub.database import CREDENTIAL_TABLES, Change, Forgotten, TokenInfo
from hub.model import ClusterSummary, HistoryEntry
from hub.reportstore import Outcome, Pending, Retention, pack
from hub.rollout_model import Memory
from hub.rollout_store import KEEP_COMMITS

log = structlog.get_logger("hub.store")

T = TypeVar("T")


def _as_is(body: bytes) -> bytes:
    return body


class PgStore:
    shared = True

    def __init__(self, url: str, conn: pg_reports.Conn, replica: str = "") -> None:
        self._url = url
        self._conn = conn
        self._closed = False
        self.replica = replica  # whose writes these are
        self._encode = _as_is if pg_schema.compresses_bodies(conn) else pack
        self._history_conn: pg_reports.Conn | None = None  # the connection holding the history lock

    @classmethod
    def open(cls, url: str, *, create: bool = True, replica: str = "") -> PgStore:
        return cls(url, pg_schema.connect(url, create=create), replica)

    @property
    def conn(self) -> pg_reports.Conn:
        """The connection, opened afresh when the server dropped it (a restart, a failover): the call
        that found it broken failed, the next one works again."""
        if self._conn.broken and not self._closed:
            self._conn = pg_schema.connect(self._url, create=False)
        return self._conn

    def saves_history(self) -> bool:
        """True if this replica writes the fleet's history down (``hub.pg_history``): it holds the
        lock on this connection, or takes it now that it is free (a new connection lost it)."""
        conn = self.conn
        if self._history_conn is not conn:
            self._history_conn = conn if pg_history.holds_lock(conn) else None
        return self._history_conn is conn

    def close(self) -> None:
        self._closed = True
        self._conn.close()

    def _again(self, work: Callable[[], T]) -> T:
        """``work``, once more on a new connection if the server had dropped this one. Safe for a
        batch too: if its COMMIT went through before the drop, the retry finds duplicates."""
        try:
            return work()
        except psycopg.OperationalError:
            if not self._conn.broken or self._closed:
                raise
            log.warning("database_reconnect", error="the connection was lost; retrying once")
            return work()

    # --- reports ----------------------------------------------------------------------------------

    def write_batch(
        self,
        batch: Sequence[Pending],
        current: dict[str, ClusterSummary],
        prune: Iterable[str],
        retention: Retention,
    ) -> list[Outcome]:
        return self._again(
            lambda: pg_reports.write_batch(self.conn, batch, prune, retention, self.replica, self._encode)
        )

    def prune_history(self, clusters: Iterable[str], retention: Retention, cutoff: float) -> int:
        with self.conn.transaction():
            return pg_reports.prune_history(self.conn, clusters, retention, cutoff)

    def purge_cluster(self, name: str) -> None:
        pg_reports.purge_cluster(self.conn, name)

    def upkeep(self) -> None:
        """Nothing: PostgreSQL's autovacuum and checkpoints bound its storage."""

    def checkpoint(self) -> None:
        """Nothing: the server checkpoints on its own."""

    def load_summaries(self) -> list[ClusterSummary]:
        return pg_reports.load_summaries(self.conn)

    def load_report(self, cluster: str, sequence: int) -> StatusReport | None:
        return self._again(lambda: pg_reports.load_report(self.conn, cluster, sequence))

    def history(self, cluster: str, limit: int = 100) -> list[HistoryEntry]:
        return self._again(lambda: pg_reports.history(self.conn, cluster, limit))

    def count_reports(self) -> int:
        return self._one("SELECT count(*) FROM reports")

    def storage_bytes(self) -> int:
        return self._one("SELECT pg_database_size(current_database())")

    def changes_since(self, mark: object, me: str) -> tuple[list[Change], object]:
        return self._again(
            lambda: pg_reports.changes_since(self.conn, None if mark is None else str(mark), me)
        )

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        row = self.conn.execute(sql.encode(), params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # --- credentials ------------------------------------------------------------------------------

    def create_tokens(self, kind: str, owners: Iterable[str]) -> dict[str, str]:
        table, column = CREDENTIAL_TABLES[kind]
        rows, created = tokens.new_rows(owners)
        with self.conn.transaction(), self.conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (token_id, {column}, digest, created_at)"  # noqa: S608
                " VALUES (%s, %s, %s, %s)".encode(),
                rows,
            )
        return created

    def list_tokens(self, kind: str) -> list[TokenInfo]:
        table, column = CREDENTIAL_TABLES[kind]
        rows = self.conn.execute(
            f"SELECT {column}, token_id, created_at FROM {table} ORDER BY {column}, created_at".encode()  # noqa: S608
        )
        return [TokenInfo(str(owner), str(token_id), float(at)) for owner, token_id, at in rows]

    def revoke_tokens(self, kind: str, owner: str, token_id: str | None = None) -> int:
        table, column = CREDENTIAL_TABLES[kind]
        sql = f"DELETE FROM {table} WHERE {column} = %s"  # noqa: S608
        if token_id is None:
            return self.conn.execute(sql.encode(), (owner,)).rowcount
        return self.conn.execute(f"{sql} AND token_id = %s".encode(), (owner, token_id)).rowcount

    def all_tokens(self, kind: str) -> dict[str, tuple[str, str]]:
        table, column = CREDENTIAL_TABLES[kind]
        sql = f"SELECT token_id, {column}, digest FROM {table}".encode()  # noqa: S608
        rows = self._again(lambda: self.conn.execute(sql).fetchall())
        return {str(token_id): (str(owner), str(digest)) for token_id, owner, digest in rows}

    def tokens_mark(self) -> object:
        """How many tokens there are and a sum of their ids' hashes, per table: the replica's
        reload every few seconds then fetches the tables only when some token changed."""
        sql = " || '/' || ".join(
            f"(SELECT count(*) || ':' || coalesce(sum(hashtext(token_id)), 0) FROM {table})"  # noqa: S608
            for table, _ in CREDENTIAL_TABLES.values()
        )
        row = self._again(lambda: self.conn.execute(f"SELECT {sql}".encode()).fetchone())
        return None if row is None else str(row[0])

    def lookup_token(self, kind: str, token_id: str) -> tuple[str, str] | None:
        table, column = CREDENTIAL_TABLES[kind]
        sql = f"SELECT {column}, digest FROM {table} WHERE token_id = %s".encode()  # noqa: S608
        row = self._again(lambda: self.conn.execute(sql, (token_id,)).fetchone())
        return None if row is None else (str(row[0]), str(row[1]))

    # --- forgetting -------------------------------------------------------------------------------

    def forget_cluster(self, name: str, *, keep_tokens: bool = False) -> Forgotten:
        with self.conn.transaction():
            known = self.conn.execute("DELETE FROM clusters WHERE name = %s", (name,)).rowcount > 0
            reports = self.conn.execute("DELETE FROM reports WHERE cluster = %s", (name,)).rowcount
            revoked = (
                0
                if keep_tokens
                else self.conn.execute("DELETE FROM tokens WHERE cluster = %s", (name,)).rowcount
            )
            self.conn.execute("INSERT INTO forgotten (cluster, at) VALUES (%s, %s)", (name, time.time()))
        return Forgotten(reports, revoked, known)

    def forgotten_since(self, after_id: int) -> list[tuple[int, str]]:
        rows = self._again(
            lambda: self.conn.execute(
                "SELECT id, cluster FROM forgotten WHERE id > %s ORDER BY id", (after_id,)
            ).fetchall()
        )
        return [(int(row_id), str(cluster)) for row_id, cluster in rows]

    def last_forgotten_id(self) -> int:
        return self._one("SELECT max(id) FROM forgotten")

    # --- staged rollouts --------------------------------------------------------------------------

    def load_rollouts(self) -> list[Memory]:
        rows = self.conn.execute("SELECT memory FROM rollouts ORDER BY bundle, first_seen")
        return [Memory.from_json(json.loads(row[0])) for row in rows]

    def load_rollout(self, bundle: str, commit: str) -> Memory | None:
        row = self._again(
            lambda: self.conn.execute(
                "SELECT memory FROM rollouts WHERE bundle = %s AND commit_sha = %s", (bundle, commit)
            ).fetchone()
        )
        return None if row is None else Memory.from_json(json.loads(row[0]))

    def save_rollout(self, memory: Memory) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO rollouts (bundle, commit_sha, first_seen, memory) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (bundle, commit_sha) DO UPDATE SET memory = excluded.memory",
                (memory.bundle, memory.commit, memory.first_seen, json.dumps(memory.to_json())),
            )
            self.conn.execute(
                "DELETE FROM rollouts WHERE bundle = %(b)s AND first_seen < (SELECT first_seen FROM rollouts"
                " WHERE bundle = %(b)s ORDER BY first_seen DESC LIMIT 1 OFFSET %(keep)s)",
                {"b": memory.bundle, "keep": KEEP_COMMITS - 1},
            )

    def rollout_pauses(self) -> dict[str, tuple[float, str]]:
        rows = self._again(
            lambda: self.conn.execute("SELECT bundle, paused_at, actor FROM rollout_pauses").fetchall()
        )
        return {str(bundle): (float(at), str(actor)) for bundle, at, actor in rows}

    def pause_rollout(self, bundle: str, actor: str) -> bool:
        return (
            self.conn.execute(
                "INSERT INTO rollout_pauses (bundle, paused_at, actor) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (bundle, time.time(), actor),
            ).rowcount
            > 0
        )

    def resume_rollout(self, bundle: str) -> bool:
        return self.conn.execute("DELETE FROM rollout_pauses WHERE bundle = %s", (bundle,)).rowcount > 0

    def allow_prune(self, cluster: str, prune_id: str, actor: str) -> bool:
        sql = (
            "INSERT INTO prune_allowances (cluster, prune_id, actor, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING"
        )
        return self.conn.execute(sql, (cluster, prune_id, actor, time.time())).rowcount > 0

    def take_prune(self, cluster: str, prune_id: str) -> str | None:
        """Consume the allowance (one replica gets it: the DELETE decides)."""
        row = self._again(
            lambda: self.conn.execute(
                "DELETE FROM prune_allowances WHERE cluster = %s AND prune_id = %s RETURNING actor",
                (cluster, prune_id),
            ).fetchone()
        )
        return str(row[0]) if row else None
