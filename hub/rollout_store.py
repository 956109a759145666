"""Persistence of staged rollouts: what the hub remembers per (bundle, commit), and fleet-wide pauses.

Its own tables in the hub's SQLite database (created here, apart from ``hub.store``'s migrations;
PostgreSQL's are in ``hub.pg_schema``'s):
the CLI pauses and resumes with its own connection while the hub runs, and the hub reads the
pauses on every gate question, so a pause takes effect at once.
"""

from __future__ import annotations

import json
import sqlite3
import time

from hub.rollout_model import Memory

KEEP_COMMITS = 20  # rollouts remembered per bundle, newest first

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rollouts (bundle TEXT NOT NULL, commit_sha TEXT NOT NULL,"
    " first_seen REAL NOT NULL, memory TEXT NOT NULL, PRIMARY KEY (bundle, commit_sha))",
    "CREATE TABLE IF NOT EXISTS rollout_pauses (bundle TEXT PRIMARY KEY, paused_at REAL NOT NULL,"
    " actor TEXT NOT NULL)",
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)


def load(conn: sqlite3.Connection) -> list[Memory]:
    rows = conn.execute("SELECT memory FROM rollouts ORDER BY bundle, first_seen")
    return [Memory.from_json(json.loads(row[0])) for row in rows]


def load_one(conn: sqlite3.Connection, bundle: str, commit: str) -> Memory | None:
    row = conn.execute(
        "SELECT memory FROM rollouts WHERE bundle = ? AND commit_sha = ?", (bundle, commit)
    ).fetchone()
    return None if row is None else Memory.from_json(json.loads(row[0]))


def save(conn: sqlite3.Connection, memory: Memory) -> None:
    conn.execute(
        "INSERT INTO rollouts (bundle, commit_sha, first_seen, memory) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(bundle, commit_sha) DO UPDATE SET memory = excluded.memory",
        (memory.bundle, memory.commit, memory.first_seen, json.dumps(memory.to_json())),
    )
    conn.execute(
        "DELETE FROM rollouts WHERE bundle = ?1 AND first_seen < (SELECT first_seen FROM rollouts"
        " WHERE bundle = ?1 ORDER BY first_seen DESC LIMIT 1 OFFSET ?2)",
        (memory.bundle, KEEP_COMMITS - 1),
    )


def pauses(conn: sqlite3.Connection) -> dict[str, tuple[float, str]]:
    rows = conn.execute("SELECT bundle, paused_at, actor FROM rollout_pauses")
    return {str(bundle): (float(at), str(actor)) for bundle, at, actor in rows}


def pause(conn: sqlite3.Connection, bundle: str, actor: str) -> bool:
    """Pause ``bundle``'s rollouts; False when it already was."""
    return (
        conn.execute(
            "INSERT OR IGNORE INTO rollout_pauses (bundle, paused_at, actor) VALUES (?, ?, ?)",
            (bundle, time.time(), actor),
        ).rowcount
        > 0
    )


def resume(conn: sqlite3.Connection, bundle: str) -> bool:
    """Resume ``bundle``'s rollouts; False when it was not paused."""
    return conn.execute("DELETE FROM rollout_pauses WHERE bundle = ?", (bundle,)).rowcount > 0
