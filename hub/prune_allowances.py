"""One-shot confirmations of a refused prune, given on the hub (``flotilla-hub rollout allow-prune``).

The deletion brake (agent/brake.py) refuses a mass uninstall and reports it with a prune id (a hash
of the cluster and the exact list of releases).  An operator may confirm it in the fleet repo, or
here: the allowance waits in the hub's database until that cluster's agent asks about that prune id
through its gate request, and is consumed by the answer that carries it — once, for that exact
list, for that cluster only (the token decides who asks).  Both steps are audited in the hub log.
The SQL here is SQLite's; PostgreSQL's is in ``hub.pg_backend`` (the store interface: hub.database).
"""

from __future__ import annotations

import re
import sqlite3
import time

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS prune_allowances (cluster TEXT NOT NULL, prune_id TEXT NOT NULL,"
    " actor TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (cluster, prune_id))"
)
_ID = re.compile(r"^(?P<cluster>[^:\s]{1,253}):[0-9a-f]{12}$")


def ensure(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA)


def check_id(cluster: str, prune_id: str) -> str | None:
    """Why ``prune_id`` cannot be a prune id of ``cluster`` (as the brake reports it), or None."""
    found = _ID.match(prune_id)
    if found is None:
        return f"prune id {prune_id!r} is not of the form CLUSTER:<12 hex digits>, as the brake reports it"
    if found["cluster"] != cluster:
        return f"prune id {prune_id!r} belongs to cluster {found['cluster']!r}, not {cluster!r}"
    return None


def allow(conn: sqlite3.Connection, cluster: str, prune_id: str, actor: str) -> bool:
    """Record the allowance; False when the same one is already waiting."""
    ensure(conn)
    cursor = conn.execute(
        "INSERT OR IGNORE INTO prune_allowances (cluster, prune_id, actor, created_at) VALUES (?, ?, ?, ?)",
        (cluster, prune_id, actor, time.time()),
    )
    return cursor.rowcount > 0


def take(conn: sqlite3.Connection, cluster: str, prune_id: str) -> str | None:
    """Consume the allowance of ``prune_id`` for ``cluster``: who gave it, or None when there is none."""
    row = conn.execute(
        "DELETE FROM prune_allowances WHERE cluster = ? AND prune_id = ? RETURNING actor", (cluster, prune_id)
    ).fetchone()
    return str(row[0]) if row else None
