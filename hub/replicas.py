"""Keeping this replica's read model current with what the other replicas commit.

Each hub process applies its own commits to its read model at once (``hub.writer``). Every
``SYNC_SECONDS`` it also asks the store for the cluster states other replicas committed since it
last looked (``Store.changes_since``) and applies the newer ones, so a report accepted by one
replica is on every replica's page and API within about ``SYNC_SECONDS`` plus one query. A
replica that loses its connection catches up from its last mark when it is back. On SQLite (one
process) there is nothing to do.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import structlog

from hub.database import Store
from hub.model import summary_from_json
from hub.readmodel import ReadModel

log = structlog.get_logger("hub.replicas")

SYNC_SECONDS = 0.5


def new_replica_id() -> str:
    """This process's name in the ``writer`` column (a fresh one per start)."""
    return secrets.token_hex(6)


class ReplicaSync:
    def __init__(self, conn: Store, replica: str, clock: Callable[[], float]) -> None:
        self._conn = conn
        self._model: ReadModel | None = None
        self._replica = replica
        self._clock = clock
        self._mark = conn.changes_since(None, replica)[1]  # taken before the read model is loaded
        self.applied = 0

    def attach(self, model: ReadModel) -> None:
        """Apply changes to ``model`` (loaded after this object took its first mark)."""
        self._model = model

    def poll(self) -> int:
        """Apply what other replicas committed since the last poll; how many clusters changed here."""
        model = self._model
        assert model is not None, "attach the read model first"
        changes, mark = self._conn.changes_since(self._mark, self._replica)
        now = self._clock()
        applied = 0
        for change in changes:
            held = model.current(change.name)
            if held is not None and held.sequence >= change.sequence:
                if change.last_seen > held.last_seen:
                    model.touch(change.name, change.last_seen, now)
                    applied += 1
                continue  # seen before (the mark lags while older transactions run)
            try:
                summary = summary_from_json(change.summary_json, change.reported_at, change.last_seen)
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("replica_change_unreadable", cluster=change.name, error=str(exc)[:300])
                continue
            model.put(summary, now, newer_only=True)
            applied += 1
        self._mark = mark
        self.applied += applied
        return applied

    def close(self) -> None:
        self._conn.close()
