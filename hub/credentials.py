"""Token checks with a short-lived cache, so ingest does not query SQLite for every report.

A token found valid is remembered for ``ttl`` seconds (by its id, with its stored hash, compared in
constant time on every use); a revocation therefore takes effect within ``ttl`` seconds. Unknown or
wrong tokens are never cached.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

from hub import store, tokens

DEFAULT_TTL = 5.0


class Credentials:
    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: threading.Lock,
        ttl: float = DEFAULT_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._lock = lock
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[tuple[str, str], tuple[str, str, float]] = {}  # (kind, id) -> owner, digest, until

    def owner(self, kind: str, token: str) -> str | None:
        """The cluster or viewer ``token`` belongs to, or None."""
        token_id = tokens.token_id_of(token)
        if token_id is None:
            return None
        now = self._monotonic()
        cached = self._cache.get((kind, token_id))
        if cached is not None and cached[2] > now:
            return cached[0] if tokens.matches(token, cached[1]) else None
        with self._lock:
            found = store.lookup_token(self._conn, kind, token_id)
        if found is None:
            self._cache.pop((kind, token_id), None)
            return None
        owner, digest = found
        if not tokens.matches(token, digest):
            return None
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[(kind, token_id)] = (owner, digest, now + self._ttl)
        return owner
