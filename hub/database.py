"""Which database the hub is on, behind one small interface: the rest of the hub never knows.

:class:`Database` names where the data lives (a SQLite data directory or a PostgreSQL URL) and opens
:class:`Store` connections; each backend's SQL lives in its own modules (``hub.store``,
``hub.reportstore``, ``hub.rollout_store`` for SQLite; ``hub.pg_schema``, ``hub.pg_reports``,
``hub.pg_backend`` for PostgreSQL). A ``Store`` is one connection, used by one thread at a time.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hub.contract import StatusReport
    from hub.model import ClusterSummary, HistoryEntry
    from hub.reportstore import Outcome, Pending, Retention
    from hub.rollout_model import Memory

URL_ENV = "FLOTILLA_HUB_DATABASE_URL"


class StoreError(RuntimeError):
    """A problem with the data directory or database that the operator must fix."""


def _driver_errors() -> tuple[type[Exception], ...]:
    try:
        import psycopg
    except ImportError:  # SQLite only: the PostgreSQL driver is an optional part of the hub extra
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


ERRORS: tuple[type[Exception], ...] = _driver_errors()  # what a database call may raise


# Where each kind of credential is kept, in both backends: (table, owner column).
CREDENTIAL_TABLES = {"cluster": ("tokens", "cluster"), "viewer": ("viewers", "name")}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    owner: str
    token_id: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Forgotten:
    reports: int
    tokens: int
    known: bool  # the hub had a current state for it


@dataclass(frozen=True, slots=True)
class Change:
    """A cluster's stored current state, as another replica committed it."""

    name: str
    sequence: int
    reported_at: float
    last_seen: float
    summary_json: bytes


class Store(Protocol):
    """One connection to the hub's database."""

    shared: bool  # other hub processes may write to the same database (replicas)

    def close(self) -> None: ...

    # reports (the writer thread)
    def write_batch(
        self,
        batch: Sequence[Pending],
        current: dict[str, ClusterSummary],
        prune: Iterable[str],
        retention: Retention,
    ) -> list[Outcome]: ...
    def prune_history(self, clusters: Iterable[str], retention: Retention, cutoff: float) -> int: ...
    def purge_cluster(self, name: str) -> None: ...
    def upkeep(self) -> None: ...
    def checkpoint(self) -> None: ...

    # reads
    def load_summaries(self) -> list[ClusterSummary]: ...
    def load_report(self, cluster: str, sequence: int) -> StatusReport | None: ...
    def history(self, cluster: str, limit: int = 100) -> list[HistoryEntry]: ...
    def count_reports(self) -> int: ...
    def storage_bytes(self) -> int: ...

    # what other replicas committed: (changes, new mark); the first call (mark None) only marks
    def changes_since(self, mark: object, me: str) -> tuple[list[Change], object]: ...

    # credentials and forgetting
    def create_tokens(self, kind: str, owners: Iterable[str]) -> dict[str, str]: ...
    def list_tokens(self, kind: str) -> list[TokenInfo]: ...
    def revoke_tokens(self, kind: str, owner: str, token_id: str | None = None) -> int: ...
    def all_tokens(self, kind: str) -> dict[str, tuple[str, str]]: ...
    # a value that changes whenever any token is created or revoked (None: not known, reload)
    def tokens_mark(self) -> object: ...
    def lookup_token(self, kind: str, token_id: str) -> tuple[str, str] | None: ...
    def forget_cluster(self, name: str, *, keep_tokens: bool = False) -> Forgotten: ...
    def forgotten_since(self, after_id: int) -> list[tuple[int, str]]: ...
    def last_forgotten_id(self) -> int: ...

    # staged rollouts
    def load_rollouts(self) -> list[Memory]: ...
    def load_rollout(self, bundle: str, commit: str) -> Memory | None: ...
    def save_rollout(self, memory: Memory) -> None: ...
    def rollout_pauses(self) -> dict[str, tuple[float, str]]: ...
    def pause_rollout(self, bundle: str, actor: str) -> bool: ...
    def resume_rollout(self, bundle: str) -> bool: ...
    def allow_prune(self, cluster: str, prune_id: str, actor: str) -> bool: ...
    def take_prune(self, cluster: str, prune_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Database:
    """Where the hub's data lives: ``url`` (PostgreSQL) if given, else SQLite in ``data_dir``."""

    data_dir: Path | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if self.url is None and self.data_dir is None:
            raise StoreError(f"give --data-dir DIR (SQLite) or --database-url URL (or ${URL_ENV})")
        if self.url is not None and not self.url.startswith(("postgresql://", "postgres://")):
            raise StoreError("--database-url must be a postgresql:// URL")

    @property
    def kind(self) -> str:
        return "sqlite" if self.url is None else "postgresql"

    def describe(self) -> str:
        """Where, for logs and messages (a URL without its password)."""
        if self.url is None:
            return str(self.data_dir)
        from hub.pg_schema import redact

        return redact(self.url)

    def connect(self, *, create: bool = True, writer: bool = False, replica: str = "") -> Store:
        """A new connection (creating and migrating the schema if ``create``); ``writer`` for ingest,
        whose writes are marked as ``replica``'s (the other replicas read them back)."""
        if self.url is None:
            from hub.sqlite_backend import SqliteStore

            assert self.data_dir is not None
            return SqliteStore.open(self.data_dir, create=create, writer=writer)
        from hub.pg_backend import PgStore

        return PgStore.open(self.url, create=create, replica=replica)


def from_options(data_dir: Path | None, url: str | None) -> Database:
    """The database named on a command line: ``--database-url``, else $FLOTILLA_HUB_DATABASE_URL, else
    ``--data-dir``."""
    url = url or os.environ.get(URL_ENV) or None
    return Database(data_dir=None if url else data_dir, url=url)
