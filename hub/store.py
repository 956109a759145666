"""SQLite (WAL) persistence: schema and migrations, credentials, accepted reports.

Only this module speaks SQL. The writer thread owns one connection for ingest; reads and the CLI
open their own connections. Acknowledged means committed: the hub answers only after COMMIT.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from hub import tokens
from hub.contract import ContractError, StatusReport, parse_report
from hub.model import ClusterSummary, summarize

DB_NAME = "hub.sqlite3"
HISTORY_PER_CLUSTER = 50  # accepted reports kept per cluster, newest by sequence

_MIGRATIONS: tuple[str, ...] = (
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
)


class StoreError(RuntimeError):
    """A problem with the data directory or database that the operator must fix."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    owner: str
    token_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Pending:
    """A validated report waiting to be written."""

    report: StatusReport
    body: bytes  # the JSON document as received (validated)
    received_at: float
    summary: ClusterSummary  # computed by the request handler, so the writer thread stays in SQLite


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one pending report: ``current``, ``late`` (older than current) or ``duplicate``."""

    result: str
    summary: ClusterSummary | None  # the new current summary when result == "current"


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
        if not autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint=0")
        _migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the hub database {path}: {exc}") from None
    return conn


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy committed WAL pages into the database file without blocking the writer (PASSIVE)."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _migrate(conn: sqlite3.Connection) -> None:
    with _transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] or 0
        for version, script in enumerate(_MIGRATIONS, start=1):
            if version > current:
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --- credentials ---------------------------------------------------------------------------------

_CREDENTIAL_TABLES = {"cluster": ("tokens", "cluster"), "viewer": ("viewers", "name")}


def create_token(conn: sqlite3.Connection, kind: str, owner: str) -> str:
    """Store a new token for ``owner`` (a cluster or a viewer) and return it; only its hash is kept."""
    table, column = _CREDENTIAL_TABLES[kind]
    new = tokens.new_token()
    with _transaction(conn):
        conn.execute(
            f"INSERT INTO {table} (token_id, {column}, digest, created_at) VALUES (?, ?, ?, ?)",  # noqa: S608
            (new.token_id, owner, new.digest, time.time()),
        )
    return new.token


def create_tokens(conn: sqlite3.Connection, kind: str, owners: Iterable[str]) -> dict[str, str]:
    """Like :func:`create_token` for many owners in one transaction (provisioning a fleet)."""
    table, column = _CREDENTIAL_TABLES[kind]
    created: dict[str, str] = {}
    with _transaction(conn):
        for owner in owners:
            new = tokens.new_token()
            conn.execute(
                f"INSERT INTO {table} (token_id, {column}, digest, created_at) VALUES (?, ?, ?, ?)",  # noqa: S608
                (new.token_id, owner, new.digest, time.time()),
            )
            created[owner] = new.token
    return created


def list_tokens(conn: sqlite3.Connection, kind: str) -> list[TokenInfo]:
    table, column = _CREDENTIAL_TABLES[kind]
    rows = conn.execute(
        f"SELECT {column}, token_id, created_at FROM {table} ORDER BY {column}, created_at"  # noqa: S608
    )
    return [TokenInfo(*row) for row in rows]


def revoke_tokens(conn: sqlite3.Connection, kind: str, owner: str) -> int:
    """Delete every token of ``owner``; return how many there were."""
    table, column = _CREDENTIAL_TABLES[kind]
    with _transaction(conn):
        return conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (owner,)).rowcount  # noqa: S608


def all_tokens(conn: sqlite3.Connection, kind: str) -> dict[str, tuple[str, str]]:
    """token id -> (owner, stored digest) for every token of ``kind``."""
    table, column = _CREDENTIAL_TABLES[kind]
    rows = conn.execute(f"SELECT token_id, {column}, digest FROM {table}")  # noqa: S608
    return {str(token_id): (str(owner), str(digest)) for token_id, owner, digest in rows}


def lookup_token(conn: sqlite3.Connection, kind: str, token_id: str) -> tuple[str, str] | None:
    """(owner, stored digest) of the token with this id, or None."""
    table, column = _CREDENTIAL_TABLES[kind]
    row = conn.execute(
        f"SELECT {column}, digest FROM {table} WHERE token_id = ?",  # noqa: S608
        (token_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


# --- reports -------------------------------------------------------------------------------------


def load_summaries(conn: sqlite3.Connection) -> list[ClusterSummary]:
    """Every cluster's current summary, rebuilt from its current stored report."""
    rows = conn.execute(
        "SELECT c.reported_at, c.last_seen, r.body FROM clusters c"
        " JOIN reports r ON r.cluster = c.name AND r.sequence = c.sequence"
    )
    summaries = []
    for reported_at, last_seen, body in rows:
        summary = summarize(parse_report(body), reported_at)
        summaries.append(_with_last_seen(summary, last_seen))
    return summaries


def load_report(conn: sqlite3.Connection, cluster: str, sequence: int) -> StatusReport | None:
    row = conn.execute(
        "SELECT body FROM reports WHERE cluster = ? AND sequence = ?", (cluster, sequence)
    ).fetchone()
    if row is None:
        return None
    try:
        return parse_report(row[0])
    except ContractError:
        return None


def history(
    conn: sqlite3.Connection, cluster: str, limit: int = HISTORY_PER_CLUSTER
) -> list[tuple[int, float]]:
    """(sequence, received_at) of the stored reports of ``cluster``, newest first."""
    rows = conn.execute(
        "SELECT sequence, received_at FROM reports WHERE cluster = ? ORDER BY sequence DESC LIMIT ?",
        (cluster, limit),
    )
    return [(int(seq), float(at)) for seq, at in rows]


def count_reports(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])


def write_batch(
    conn: sqlite3.Connection,
    batch: Sequence[Pending],
    current: dict[str, ClusterSummary],
    prune: Iterable[str] = (),
) -> list[Outcome]:
    """Store a batch in one transaction (group commit) and say what happened to each report.

    ``current`` maps cluster names to their current summaries; it is read, not modified: the
    caller applies the outcomes once the transaction has committed. The history of the clusters
    in ``prune`` is cut back to the newest ``HISTORY_PER_CLUSTER`` reports.
    """
    outcomes: list[Outcome] = []
    newest: dict[str, ClusterSummary] = {}
    with _transaction(conn):
        for item in batch:
            outcomes.append(
                _write_one(conn, item, newest.get(item.report.cluster) or current.get(item.report.cluster))
            )
            last = outcomes[-1].summary
            if last is not None:
                newest[last.name] = last
        _prune(conn, prune)
    return outcomes


def _write_one(conn: sqlite3.Connection, item: Pending, current: ClusterSummary | None) -> Outcome:
    report = item.report
    inserted = conn.execute(
        "INSERT OR IGNORE INTO reports (cluster, sequence, received_at, body) VALUES (?, ?, ?, ?)",
        (report.cluster, report.sequence, item.received_at, item.body),
    ).rowcount
    if not inserted:
        return Outcome("duplicate", None)
    if current is not None and report.sequence < current.sequence:
        conn.execute(
            "UPDATE clusters SET last_seen = max(last_seen, ?) WHERE name = ?",
            (item.received_at, report.cluster),
        )
        return Outcome("late", None)
    conn.execute(
        "INSERT INTO clusters (name, sequence, reported_at, last_seen) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence,"
        " reported_at = excluded.reported_at, last_seen = max(last_seen, excluded.last_seen)",
        (report.cluster, report.sequence, item.received_at, item.received_at),
    )
    return Outcome("current", item.summary)


def _prune(conn: sqlite3.Connection, clusters: Iterable[str]) -> None:
    for cluster in clusters:
        conn.execute(
            "DELETE FROM reports WHERE cluster = ?1 AND sequence < (SELECT sequence FROM reports"
            " WHERE cluster = ?1 ORDER BY sequence DESC LIMIT 1 OFFSET ?2)",
            (cluster, HISTORY_PER_CLUSTER - 1),
        )


def _with_last_seen(summary: ClusterSummary, last_seen: float) -> ClusterSummary:
    return replace(summary, last_seen=max(last_seen, summary.last_seen))
