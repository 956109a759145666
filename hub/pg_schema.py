"""PostgreSQL connections and versioned schema migrations.

Migrations run at start-up inside one transaction that first takes a transaction-level advisory
lock, so hub replicas starting at once against an empty database migrate it exactly once: the
others wait on the lock, then find the schema current. Never edit a released entry: append one.

``clusters.tx`` is the id of the transaction that last changed the row (``pg_current_xact_id()``)
and ``clusters.writer`` the replica that wrote it; the other replicas read the rows changed since
the oldest transaction that was still running when they last looked (``hub.pg_reports``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg

from hub import pg_history
from hub.database import StoreError

MIGRATION_LOCK = 0x466C6F74  # pg_advisory_xact_lock key of the hub's migrations ("Flot")
CONNECT_TIMEOUT = 10

Conn = psycopg.Connection[tuple[object, ...]]


def _bodies_by_server(conn: Conn) -> None:
    """3: report bodies compressed by the server with lz4 (in C, off the hub's interpreter: about a
    quarter of the CPU of zlib in the hub) and kept in the row up to 4 KB rather than moved to the
    TOAST table. A server built without lz4 keeps pglz, and the hub then compresses them itself
    (:func:`compresses_bodies`). Bodies stored before stay as they were (``unpack`` reads both)."""
    conn.execute("ALTER TABLE reports SET (toast_tuple_target = 4080)")
    try:
        with conn.transaction():
            conn.execute("ALTER TABLE reports ALTER COLUMN body SET COMPRESSION lz4")
    except (psycopg.errors.FeatureNotSupported, psycopg.errors.SyntaxError):
        pass


def compresses_bodies(conn: Conn) -> bool:
    """True if the server compresses report bodies with lz4 (the hub then sends them as they came)."""
    row = conn.execute(
        "SELECT attcompression FROM pg_attribute WHERE attrelid = 'reports'::regclass AND attname = 'body'"
    ).fetchone()
    return row is not None and row[0] == "l"


MIGRATIONS: tuple[str | Callable[[Conn], None], ...] = (
    """
    CREATE TABLE tokens (
        token_id TEXT PRIMARY KEY, cluster TEXT NOT NULL, digest TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX tokens_cluster ON tokens (cluster);
    CREATE TABLE viewers (
        token_id TEXT PRIMARY KEY, name TEXT NOT NULL, digest TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX viewers_name ON viewers (name);
    CREATE TABLE reports (
        cluster TEXT NOT NULL, sequence BIGINT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
        body BYTEA NOT NULL, health TEXT, commit_id TEXT, PRIMARY KEY (cluster, sequence)
    );
    CREATE TABLE clusters (
        name TEXT PRIMARY KEY, sequence BIGINT NOT NULL, reported_at DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL, summary BYTEA NOT NULL,
        tx XID8 NOT NULL DEFAULT pg_current_xact_id(), writer TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX clusters_tx ON clusters (tx);
    CREATE TABLE forgotten (id BIGSERIAL PRIMARY KEY, cluster TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
    CREATE TABLE rollouts (
        bundle TEXT NOT NULL, commit_sha TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
        memory TEXT NOT NULL, PRIMARY KEY (bundle, commit_sha)
    );
    CREATE TABLE rollout_pauses (
        bundle TEXT PRIMARY KEY, paused_at DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL
    );
    """,
    # 2: one-shot confirmations of a refused prune (hub.prune_allowances)
    """
    CREATE TABLE prune_allowances (
        cluster TEXT NOT NULL, prune_id TEXT NOT NULL, actor TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (cluster, prune_id)
    );
    """,
    _bodies_by_server,
    # 4: the fleet's history and first sightings of errors (hub.pg_history), as SQLite's version 3
    pg_history.TABLES,
)


def redact(url: str) -> str:
    """``url`` without its password (for logs and error messages)."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def connect(url: str, *, create: bool = True) -> Conn:
    """An autocommit connection to the hub's database, migrated to the current schema if ``create``."""
    try:
        conn = psycopg.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="flotilla-hub"
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot connect to {redact(url)}: {redact(str(exc)).strip()}") from None
    try:
        if create:
            migrate(conn)
        else:
            _check_version(conn, url)
    except psycopg.Error as exc:
        conn.close()
        raise StoreError(f"cannot migrate the hub database at {redact(url)}: {exc}") from None
    except StoreError:
        conn.close()
        raise
    return conn


def _check_version(conn: Conn, url: str) -> None:
    current = schema_version(conn)
    if current == 0:
        raise StoreError(f"no hub database at {redact(url)} (start `flotilla-hub serve` on it first)")
    if current > len(MIGRATIONS):
        raise StoreError(_newer(current))


def _newer(current: int) -> str:
    return f"the database has schema version {current}, newer than this hub knows ({len(MIGRATIONS)})"


def schema_version(conn: Conn) -> int:
    if conn.execute("SELECT to_regclass('flotilla_schema_version')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT max(version) FROM flotilla_schema_version").fetchone()
    return int(str(row[0])) if row and row[0] is not None else 0


def migrate(conn: Conn) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS flotilla_schema_version (version INTEGER NOT NULL)")
        current = schema_version(conn)
        if current > len(MIGRATIONS):
            raise StoreError(_newer(current))
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            if isinstance(script, str):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement.encode())
            else:
                script(conn)
            conn.execute("INSERT INTO flotilla_schema_version (version) VALUES (%s)", (version,))
