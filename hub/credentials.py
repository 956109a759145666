"""Token checks from memory, so ingest never waits on SQLite (or on the GIL after it) per report.

Every token (id, owner, hash) is held in memory and reloaded from SQLite every few seconds (by
:mod:`hub.maintenance`), so a token created or revoked with the CLI takes effect within that time.
A token id not in memory is looked up at once (a token created a moment ago works immediately).
The hash comparison is done in constant time on every use.
"""

from __future__ import annotations

import sqlite3
import threading

from hub import store, tokens

_KINDS = ("cluster", "viewer")


class Credentials:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn  # its own connection: no other reader waits behind a reload
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, tuple[str, str]]] = {kind: {} for kind in _KINDS}
        self._mark: list[tuple[int, float]] = []
        self.reload()

    def reload(self) -> None:
        with self._lock:
            mark = [store.tokens_mark(self._conn, kind) for kind in _KINDS]
            if mark == self._mark:
                return  # no token created or revoked since the last reload
            fresh = {kind: store.all_tokens(self._conn, kind) for kind in _KINDS}
            self._mark = mark
        self._known = fresh  # one reference swap: readers see the old or the new table, never a mix

    def owner(self, kind: str, token: str) -> str | None:
        """The cluster or viewer ``token`` belongs to, or None."""
        token_id = tokens.token_id_of(token)
        if token_id is None:
            return None
        entry = self._known[kind].get(token_id)
        if entry is None:
            with self._lock:
                entry = store.lookup_token(self._conn, kind, token_id)
            if entry is None:
                return None
        owner, digest = entry
        return owner if tokens.matches(token, digest) else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
