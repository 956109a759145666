"""SQLite (WAL) persistence, the default backend (see hub.database): the connection, versioned
schema migrations, credentials, forgetting.

Only this module, :mod:`hub.reportstore` and :mod:`hub.rollout_store` speak SQLite's SQL. The
writer thread owns one connection for ingest; reads, maintenance and the CLI open their own.
Acknowledged means committed: the hub answers only after COMMIT (``synchronous=FULL``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hub import tokens
from hub.database import CREDENTIAL_TABLES, Forgotten, StoreError, TokenInfo

DB_NAME = "hub.sqlite3"
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # the WAL is truncated back to this after a checkpoint resets it
WAL_RESTART_BYTES = 16 * 1024 * 1024  # WAL in use past which the log is made to start over
WRITER_CACHE_KIB = 32 * 1024  # the writer's page cache: index pages of 100k clusters stay in memory

# Versioned migrations, applied in order inside one transaction each; the version is recorded in
# schema_version. Never edit a released entry: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tokens (
        token_id TEXT PRIMARY KEY, cluster TEXT NOT NULL, digest TEXT NOT NULL, created_at REAL NOT NULL
    );
    CREATE INDEX tokens_cluster ON tokens(cluster);
    CREATE TABLE viewers (
        token_id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL, created_at REAL NOT NULL
    );
    CREATE INDEX viewers_name ON viewers(name);
    CREATE TABLE reports (
        cluster TEXT NOT NULL, sequence INTEGER NOT NULL, received_at REAL NOT NULL, body BLOB NOT NULL,
        UNIQUE (cluster, sequence)
    );
    CREATE TABLE clusters (
        name TEXT PRIMARY KEY, sequence INTEGER NOT NULL, reported_at REAL NOT NULL, last_seen REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: the compact summary beside each cluster (fast restart), health and commit per stored
    # report (history without reading bodies), and the log of forgotten clusters (the running hub
    # drops them from memory).
    """
    ALTER TABLE clusters ADD COLUMN summary BLOB;
    ALTER TABLE reports ADD COLUMN health TEXT;
    ALTER TABLE reports ADD COLUMN commit_id TEXT;
    CREATE TABLE forgotten (id INTEGER PRIMARY KEY AUTOINCREMENT, cluster TEXT NOT NULL, at REAL NOT NULL);
    """,
    # 3: the fleet's history (samples of the clusters per state, the newest events) and when each
    # current error signature was first seen, so /history and /errors survive a restart. Bounded by
    # hub.history_store: a week of samples, MAX_EVENTS events, one row per current signature.
    """
    CREATE TABLE fleet_samples (at REAL PRIMARY KEY, states TEXT NOT NULL);
    CREATE TABLE fleet_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, cluster TEXT NOT NULL, kind TEXT NOT NULL,
        text TEXT NOT NULL, state TEXT NOT NULL
    );
    CREATE TABLE error_signatures (signature TEXT PRIMARY KEY, first_seen REAL NOT NULL);
    """,
    # 4: a change stamp on each cluster row (the writer's group number), so the hub's reader
    # processes follow what the writer commits (hub.readsync) with one indexed query.
    """
    ALTER TABLE clusters ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX clusters_changed ON clusters(changed);
    """,
    # 5: a counter of token changes, bumped in the transaction of every create, revoke and forget,
    # so each hub process reloads its token table only when it changed (not 100k rows every 2 s).
    """
    CREATE TABLE token_changes (n INTEGER NOT NULL);
    INSERT INTO token_changes (n) VALUES (0);
    """,
)

_BUMP_TOKENS = "UPDATE token_changes SET n = n + 1"


def connect(data_dir: Path, *, create: bool = True, autocheckpoint: bool = True) -> sqlite3.Connection:
    """Open (and migrate) the hub database in ``data_dir``."""
    path = data_dir / DB_NAME
    if not create and not path.exists():
        raise StoreError(f"no hub database in {data_dir} (start `flotilla-hub serve --data-dir {data_dir}`)")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        if not autocheckpoint:  # the ingest writer: no checkpoints of its own, a larger page cache
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the hub database {path}: {exc}") from None
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = schema_version(conn)
        if current > len(MIGRATIONS):
            raise StoreError(
                f"the database has schema version {current}, newer than this hub knows ({len(MIGRATIONS)})"
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            if version > current:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def checkpoint(conn: sqlite3.Connection) -> int:
    """Copy committed WAL pages into the database without blocking the writer (PASSIVE); returns the
    bytes of WAL in use (frames since the log last started over)."""
    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return max(0, int(row[1])) * int(conn.execute("PRAGMA page_size").fetchone()[0]) if row else 0


def restart_wal(conn: sqlite3.Connection, wait_ms: int = 100) -> bool:
    """Checkpoint everything and have the next commit write the WAL from its beginning (RESTART), so
    the file is reused, not grown; True if done. Unlike TRUNCATE it frees no blocks (on a disk
    mounted with online discard, freeing 64 MiB takes a tenth of a second, which the writer would
    wait). It waits for the writer's transaction and for readers at most ``wait_ms``."""
    return _checkpoint_waiting(conn, "RESTART", wait_ms)


def truncate_wal(conn: sqlite3.Connection, wait_ms: int = 100) -> bool:
    """Checkpoint everything and empty the WAL file; True if done. It waits for the writer's
    transaction and for readers at most ``wait_ms`` (a long read must not stall ingest, nor the
    writer wait behind it); the caller retries later."""
    return _checkpoint_waiting(conn, "TRUNCATE", wait_ms)


def _checkpoint_waiting(conn: sqlite3.Connection, mode: str, wait_ms: int) -> bool:
    conn.execute(f"PRAGMA busy_timeout={wait_ms}")
    try:
        busy, _, _ = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    except sqlite3.OperationalError:
        busy = 1
    finally:
        conn.execute("PRAGMA busy_timeout=30000")
    return not busy


def wal_bytes(data_dir: Path) -> int:
    try:
        return (data_dir / f"{DB_NAME}-wal").stat().st_size
    except FileNotFoundError:
        return 0


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- credentials ---------------------------------------------------------------------------------


def create_token(conn: sqlite3.Connection, kind: str, owner: str) -> str:
    """Store a new token for ``owner`` (a cluster or a viewer) and return it; only its hash is kept.

    An owner may hold several tokens at once: create the new one, roll it out, revoke the old by id.
    """
    return create_tokens(conn, kind, [owner])[owner]


def create_tokens(conn: sqlite3.Connection, kind: str, owners: Iterable[str]) -> dict[str, str]:
    """Like :func:`create_token` for many owners in one transaction (provisioning a fleet)."""
    table, column = CREDENTIAL_TABLES[kind]
    rows, created = tokens.new_rows(owners)
    with transaction(conn):
        conn.executemany(
            f"INSERT INTO {table} (token_id, {column}, digest, created_at) VALUES (?, ?, ?, ?)",  # noqa: S608
            rows,
        )
        conn.execute(_BUMP_TOKENS)
    return created


def list_tokens(conn: sqlite3.Connection, kind: str) -> list[TokenInfo]:
    table, column = CREDENTIAL_TABLES[kind]
    rows = conn.execute(
        f"SELECT {column}, token_id, created_at FROM {table} ORDER BY {column}, created_at"  # noqa: S608
    )
    return [TokenInfo(*row) for row in rows]


def revoke_tokens(conn: sqlite3.Connection, kind: str, owner: str, token_id: str | None = None) -> int:
    """Delete every token of ``owner``, or only the one with ``token_id``; return how many went."""
    table, column = CREDENTIAL_TABLES[kind]
    with transaction(conn):
        conn.execute(_BUMP_TOKENS)
        if token_id is None:
            return conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (owner,)).rowcount  # noqa: S608
        return conn.execute(
            f"DELETE FROM {table} WHERE {column} = ? AND token_id = ?",  # noqa: S608
            (owner, token_id),
        ).rowcount


def tokens_mark(conn: sqlite3.Connection) -> int:
    """The token change counter: equal marks, equal token tables (see migration 5)."""
    return int(conn.execute("SELECT n FROM token_changes").fetchone()[0])


def all_tokens(conn: sqlite3.Connection, kind: str) -> dict[str, tuple[str, str]]:
    """token id -> (owner, stored digest) for every token of ``kind``."""
    table, column = CREDENTIAL_TABLES[kind]
    rows = conn.execute(f"SELECT token_id, {column}, digest FROM {table}")  # noqa: S608
    return {str(token_id): (str(owner), str(digest)) for token_id, owner, digest in rows}


def lookup_token(conn: sqlite3.Connection, kind: str, token_id: str) -> tuple[str, str] | None:
    """(owner, stored digest) of the token with this id, or None."""
    table, column = CREDENTIAL_TABLES[kind]
    row = conn.execute(
        f"SELECT {column}, digest FROM {table} WHERE token_id = ?",  # noqa: S608
        (token_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


# --- forgetting a cluster ------------------------------------------------------------------------


def forget_cluster(conn: sqlite3.Connection, name: str, *, keep_tokens: bool = False) -> Forgotten:
    """Delete a cluster's state, history and (unless ``keep_tokens``) tokens, and log the forget so
    a running hub drops the cluster from memory within seconds."""
    with transaction(conn):
        known = conn.execute("DELETE FROM clusters WHERE name = ?", (name,)).rowcount > 0
        reports = conn.execute("DELETE FROM reports WHERE cluster = ?", (name,)).rowcount
        revoked = 0 if keep_tokens else conn.execute("DELETE FROM tokens WHERE cluster = ?", (name,)).rowcount
        if revoked:
            conn.execute(_BUMP_TOKENS)
        conn.execute("INSERT INTO forgotten (cluster, at) VALUES (?, ?)", (name, time.time()))
    return Forgotten(reports, revoked, known)


def forgotten_since(conn: sqlite3.Connection, after_id: int) -> list[tuple[int, str]]:
    """(id, cluster) of the forgets logged after ``after_id``, oldest first."""
    rows = conn.execute("SELECT id, cluster FROM forgotten WHERE id > ? ORDER BY id", (after_id,))
    return [(int(row_id), str(cluster)) for row_id, cluster in rows]


def last_forgotten_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM forgotten").fetchone()[0])
