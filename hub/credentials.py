"""Token checks from memory, so ingest never waits on the database (or on the GIL after it) per report.

Every token (id, owner, hash) is held in memory and reloaded from the store every few seconds (by
:mod:`hub.maintenance`), so a token created or revoked with the CLI takes effect within that time
on every replica.
A token id not in memory is looked up at once (a token created a moment ago works immediately).
The hash comparison is done in constant time on every use.
"""

from __future__ import annotations

import threading

from hub import tokens
from hub.database import Store

_KINDS = ("cluster", "viewer")


class Credentials:
    def __init__(self, conn: Store) -> None:
        self._conn = conn  # its own connection: no other reader waits behind a reload
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, tuple[str, str]]] = {kind: {} for kind in _KINDS}
        self._mark: object = None
        self.reload()

    def reload(self) -> None:
        """Read the tokens again, unless the store says none changed since the last reload."""
        with self._lock:
            mark = self._conn.tokens_mark()  # before the rows: a change meanwhile is seen next time
            if mark is not None and mark == self._mark:
                return
            fresh = {kind: self._conn.all_tokens(kind) for kind in _KINDS}
        self._known = fresh  # one reference swap: readers see the old or the new table, never a mix
        self._mark = mark

    def owner(self, kind: str, token: str) -> str | None:
        """The cluster or viewer ``token`` belongs to, or None."""
        token_id = tokens.token_id_of(token)
        if token_id is None:
            return None
        entry = self._known[kind].get(token_id)
        if entry is None:
            with self._lock:
                entry = self._conn.lookup_token(kind, token_id)
            if entry is None:
                return None
        owner, digest = entry
        return owner if tokens.matches(token, digest) else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
