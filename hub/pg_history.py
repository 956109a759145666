"""The fleet's history and the errors' first sightings in PostgreSQL (the SQLite twin is in
``hub.history_store``), so /history and /errors survive a restart there too.

Every replica keeps the history in memory from its own read model, which follows the others, so
all replicas see the same fleet. Only one of them writes it down: the one holding a session-level
advisory lock (:data:`HISTORY_LOCK`) on its writer's connection; the others drop what they would
have saved. When that replica stops, its connection ends, the lock is free and the next replica to
save takes it over. A restarted replica loads what was saved.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog

from hub.timeline import MAX_EVENTS, SAMPLE_SECONDS, WEEK, Event

log = structlog.get_logger("hub.history_store")

Conn = psycopg.Connection[tuple[Any, ...]]

HISTORY_LOCK = 0x466C6F75  # pg_try_advisory_lock key of the replica that saves the history

TABLES = """
    CREATE TABLE fleet_samples (at DOUBLE PRECISION PRIMARY KEY, states TEXT NOT NULL);
    CREATE TABLE fleet_events (
        id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION NOT NULL, cluster TEXT NOT NULL,
        kind TEXT NOT NULL, text TEXT NOT NULL, state TEXT NOT NULL
    );
    CREATE TABLE error_signatures (signature TEXT PRIMARY KEY, first_seen DOUBLE PRECISION NOT NULL);
"""


def holds_lock(conn: Conn) -> bool:
    """True if this connection saves the history (taking the lock when it is free)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (HISTORY_LOCK,)).fetchone()
    return bool(row and row[0])


def load(conn: Conn, now: float) -> tuple[list[tuple[float, dict[str, int]]], list[Event], dict[str, float]]:
    from hub.history_store import samples_from  # that module imports this one when it needs it

    samples = samples_from(
        conn.execute(
            "SELECT at, states FROM fleet_samples WHERE at > %s ORDER BY at", (now - WEEK - SAMPLE_SECONDS,)
        )
    )
    rows = conn.execute(
        "SELECT at, cluster, kind, text, state FROM fleet_events ORDER BY id DESC LIMIT %s", (MAX_EVENTS,)
    ).fetchall()
    events = [
        Event(float(at), cluster, kind, text, state) for at, cluster, kind, text, state in reversed(rows)
    ]
    first_seen = {
        str(sig): float(at) for sig, at in conn.execute("SELECT signature, first_seen FROM error_signatures")
    }
    return samples, events, first_seen


def save(
    conn: Conn,
    samples: Sequence[tuple[float, dict[str, int]]],
    events: Sequence[Event],
    first_seen: dict[str, float | None],
    now: float,
) -> None:
    """Write what changed in one transaction, and cut the tables back to their bounds."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO fleet_samples (at, states) VALUES (%s, %s)"
            " ON CONFLICT (at) DO UPDATE SET states = excluded.states",
            [(at, json.dumps(states, sort_keys=True)) for at, states in samples],
        )
        cursor.execute("DELETE FROM fleet_samples WHERE at < %s", (now - WEEK - SAMPLE_SECONDS,))
        cursor.executemany(
            "INSERT INTO fleet_events (at, cluster, kind, text, state) VALUES (%s, %s, %s, %s, %s)",
            [(e.at, e.cluster, e.kind, e.text, e.state) for e in events],
        )
        if events:
            cursor.execute(
                "DELETE FROM fleet_events WHERE id <= (SELECT max(id) FROM fleet_events) - %s", (MAX_EVENTS,)
            )
        cursor.executemany(
            "INSERT INTO error_signatures (signature, first_seen) VALUES (%s, %s)"
            " ON CONFLICT (signature) DO UPDATE SET first_seen = excluded.first_seen",
            [(sig, at) for sig, at in first_seen.items() if at is not None],
        )
        cursor.executemany(
            "DELETE FROM error_signatures WHERE signature = %s",
            [(sig,) for sig, at in first_seen.items() if at is None],
        )
