"""Choosing the store (hub.database) and the read model's rule for replicas applying commits in any
order: pure logic, no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.connectivity import Thresholds
from hub.database import URL_ENV, Database, StoreError, from_options
from hub.model import summarize
from hub.pg_schema import redact
from hub.readmodel import ReadModel
from tests.unit.hub.factory import make_bundle, make_report


def test_the_url_wins_over_the_data_dir_and_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    assert from_options(Path("/d"), None) == Database(data_dir=Path("/d"))
    assert from_options(Path("/d"), "postgresql://h/db").kind == "postgresql"
    monkeypatch.setenv(URL_ENV, "postgresql://env/db")
    assert from_options(None, None) == Database(url="postgresql://env/db")
    assert from_options(None, "postgresql://flag/db").url == "postgresql://flag/db"


def test_a_missing_or_foreign_location_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="--data-dir DIR"):
        Database()
    with pytest.raises(StoreError, match="postgresql:// URL"):
        Database(url="mysql://h/db")


def test_passwords_never_reach_messages() -> None:
    assert redact("postgresql://hub:s3cret@db:5432/fleet") == "postgresql://hub:***@db:5432/fleet"
    assert redact("postgresql://hub@db/fleet") == "postgresql://hub@db/fleet"
    assert "s3cret" not in Database(url="postgresql://hub:s3cret@db/fleet").describe()


def test_a_replica_never_moves_a_cluster_back_but_keeps_the_newest_sign_of_life() -> None:
    model = ReadModel(Thresholds())
    newer = summarize(make_report("edge-1", 5, [make_bundle("web", "Failed")]), 100.0)
    older = summarize(make_report("edge-1", 4, [make_bundle("web", "Ready")]), 200.0)
    model.put(newer, 100.0, newer_only=True)
    model.put(older, 200.0, newer_only=True)  # committed earlier, applied later (another replica's)
    current = model.current("edge-1")
    assert current is not None
    assert (current.sequence, current.health, current.last_seen) == (5, "Failed", 200.0)
    model.put(older, 300.0)  # the single-writer path (SQLite) applies what the store decided
    assert model.current("edge-1") == older


class _ForgetLog:
    """The store's forget log as ForgetWatch reads it (rows become visible in commit order)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []

    def last_forgotten_id(self) -> int:
        return max((i for i, _ in self.rows), default=0)

    def forgotten_since(self, after_id: int) -> list[tuple[int, str]]:
        return sorted(row for row in self.rows if row[0] > after_id)


def test_a_forget_that_commits_after_a_later_one_is_still_applied_once() -> None:
    from hub.maintenance import ForgetWatch

    log = _ForgetLog()
    dropped: list[str] = []
    watch = ForgetWatch(log, dropped.append)  # type: ignore[arg-type]
    log.rows.append((6, "edge-6"))  # id 5 was handed out first but has not committed yet
    watch.poll()
    log.rows.append((5, "edge-5"))
    watch.poll()
    watch.poll()
    assert dropped == ["edge-6", "edge-5"]
