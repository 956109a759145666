"""The fleet's history and the errors' first sightings in SQLite, so a restart does not forget them.

Three small tables (schema version 3 in :mod:`hub.store`): ``fleet_samples`` (at most a week of
SAMPLE_SECONDS samples), ``fleet_events`` (the newest MAX_EVENTS) and ``error_signatures`` (one row
per signature some cluster currently reports). The ingest writer saves what changed between its
groups (:meth:`Journal.save`); the start-up load reads them back. On PostgreSQL the same tables
are in ``hub.pg_history``, written by one replica at a time.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from hub.database import ERRORS, Store
from hub.sqlite_backend import SqliteStore
from hub.store import transaction
from hub.timeline import MAX_EVENTS, SAMPLE_SECONDS, WEEK, Event

log = structlog.get_logger(__name__)

MAX_UNSAVED = 10_000  # changes held while the store is unwritable (the oldest are dropped past it)


@dataclass
class Stored:
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    first_seen: dict[str, float] = field(default_factory=dict)


def _sqlite(store: Store) -> sqlite3.Connection | None:
    return store.conn if isinstance(store, SqliteStore) else None


def load(store: Store, now: float) -> Stored | None:
    """What was saved before the restart; None where this store keeps no history."""
    if store.shared:
        return _load_shared(store, now)
    conn = _sqlite(store)
    if conn is None:
        return None
    samples = samples_from(
        conn.execute(
            "SELECT at, states FROM fleet_samples WHERE at > ? ORDER BY at", (now - WEEK - SAMPLE_SECONDS,)
        )
    )
    events = [
        Event(float(at), cluster, kind, text, state)
        for at, cluster, kind, text, state in conn.execute(
            "SELECT at, cluster, kind, text, state FROM fleet_events ORDER BY id DESC LIMIT ?", (MAX_EVENTS,)
        )
    ]
    events.reverse()
    first_seen = {
        str(sig): float(at) for sig, at in conn.execute("SELECT signature, first_seen FROM error_signatures")
    }
    return Stored(samples, events, first_seen)


def samples_from(rows: Iterable[tuple[Any, Any]]) -> list[tuple[float, dict[str, int]]]:
    """Stored fleet samples (time, JSON of clusters per state), as the fleet index takes them."""
    samples = []
    for at, states in rows:
        try:
            samples.append((float(at), {str(k): int(v) for k, v in json.loads(states).items()}))
        except (ValueError, TypeError, AttributeError) as exc:  # a damaged row costs one sample, not the hub
            log.warning("fleet_sample_unreadable", at=at, error=str(exc)[:200])
    return samples


def _load_shared(store: Store, now: float) -> Stored:
    from hub import pg_history
    from hub.pg_backend import PgStore

    assert isinstance(store, PgStore)
    return Stored(*pg_history.load(store.conn, now))


def _save_shared(store: Store, journal: Journal, now: float) -> None:
    """Save on PostgreSQL if this replica is the one that saves (``hub.pg_history``), else drop."""
    from hub import pg_history
    from hub.pg_backend import PgStore

    assert isinstance(store, PgStore)
    saves = store.saves_history()
    samples, events, first_seen = journal.take()
    if not saves or not (samples or events or first_seen):
        return
    try:
        pg_history.save(store.conn, samples, events, first_seen, now)
    except ERRORS:
        journal.keep(samples, events, first_seen)
        raise


class Journal:
    """What the fleet index changed since the last save (thread-safe: readers add samples too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: deque[tuple[float, dict[str, int]]] = deque(maxlen=MAX_UNSAVED)
        self.events: deque[Event] = deque(maxlen=MAX_UNSAVED)
        self.first_seen: dict[str, float | None] = {}  # signature -> first seen (None: no longer seen)

    def sample(self, at: float, states: dict[str, int]) -> None:
        with self._lock:
            self.samples.append((at, states))

    def event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def signature(self, signature: str, first_seen: float | None) -> None:
        with self._lock:
            if len(self.first_seen) < MAX_UNSAVED or signature in self.first_seen:
                self.first_seen[signature] = first_seen

    def take(self) -> tuple[list[tuple[float, dict[str, int]]], list[Event], dict[str, float | None]]:
        """What changed since the last save, handed over (the journal is empty afterwards)."""
        with self._lock:
            taken = list(self.samples), list(self.events), dict(self.first_seen)
            self.samples.clear()
            self.events.clear()
            self.first_seen.clear()
        return taken

    def keep(
        self,
        samples: list[tuple[float, dict[str, int]]],
        events: list[Event],
        first_seen: dict[str, float | None],
    ) -> None:
        """Put back what could not be saved, for the next save (bounded by the deques)."""
        with self._lock:
            self.samples.extendleft(reversed(samples))
            self.events.extendleft(reversed(events))
            for sig, at in first_seen.items():
                self.first_seen.setdefault(sig, at)

    def save(self, store: Store, now: float) -> None:
        """Write what changed in one transaction, and cut the tables back to their bounds."""
        if store.shared:
            _save_shared(store, self, now)
            return
        conn = _sqlite(store)
        if conn is None:
            return
        samples, events, first_seen = self.take()
        if not (samples or events or first_seen):
            return
        try:
            with transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO fleet_samples (at, states) VALUES (?, ?)",
                    [(at, json.dumps(states, sort_keys=True)) for at, states in samples],
                )
                conn.execute("DELETE FROM fleet_samples WHERE at < ?", (now - WEEK - SAMPLE_SECONDS,))
                conn.executemany(
                    "INSERT INTO fleet_events (at, cluster, kind, text, state) VALUES (?, ?, ?, ?, ?)",
                    [(e.at, e.cluster, e.kind, e.text, e.state) for e in events],
                )
                conn.execute(
                    "DELETE FROM fleet_events WHERE id <= (SELECT max(id) FROM fleet_events) - ?",
                    (MAX_EVENTS,),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO error_signatures (signature, first_seen) VALUES (?, ?)",
                    [(sig, at) for sig, at in first_seen.items() if at is not None],
                )
                conn.executemany(
                    "DELETE FROM error_signatures WHERE signature = ?",
                    [(sig,) for sig, at in first_seen.items() if at is None],
                )
        except sqlite3.Error:
            self.keep(samples, events, first_seen)
            raise
