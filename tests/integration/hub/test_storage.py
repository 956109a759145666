"""Bounded storage on a real hub: history by count and by age (also for clusters that went silent),
compressed bodies, and a restart that serves what it had without re-reading every report."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from hub import store
from hub.database import Database
from hub.reportstore import Retention
from hub.writer import PRUNE_EVERY, UPKEEP_SECONDS
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.hubserver import (
    InProcessHub,
    Where,
    create_token,
    create_viewer,
    database_of,
    post_report,
    stored_report_count,
)
from tests.unit.hub.factory import make_bundle, make_report


def _post(hub: InProcessHub, token: str, cluster: str, sequence: int) -> None:
    response = post_report(
        hub.url, make_report(cluster, sequence, [make_bundle(f"b{i}") for i in range(5)]), token
    )
    assert response.status_code == 202


def _stored(where: Where, cluster: str, *, bodies: bool = False) -> list[int] | list[tuple[int, bool]]:
    """The stored sequences of ``cluster``, oldest first (with whether each kept its body)."""
    conn = database_of(where).connect()
    try:
        sequences = [entry.sequence for entry in reversed(conn.history(cluster, 10_000))]
        if not bodies:
            return sequences
        return [(seq, conn.load_report(cluster, seq) is not None) for seq in sequences]
    finally:
        conn.close()


def _eventually(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(UPKEEP_SECONDS / 2)


@BOTH_BACKENDS
def test_history_is_kept_to_its_count(database: Database) -> None:
    hub = InProcessHub(database, retention=Retention(reports=5)).start()
    try:
        token = create_token(database, "edge-1")
        for sequence in range(1, 41):
            _post(hub, token, "edge-1", sequence)
        assert len(_stored(database, "edge-1")) < 5 + PRUNE_EVERY  # cut back as reports come in
        _eventually(lambda: _stored(database, "edge-1") == [36, 37, 38, 39, 40])  # and by the sweep
        rows = _stored(database, "edge-1", bodies=True)
        assert rows == [(36, False), (37, False), (38, True), (39, True), (40, True)]  # newest 3 keep a body
        viewer = create_viewer(database)
        detail = httpx.get(hub.url + "/api/v1/clusters/edge-1", headers={"Authorization": f"Bearer {viewer}"})
        assert [h["sequence"] for h in detail.json()["history"]] == [40, 39, 38, 37, 36]
        assert {h["health"] for h in detail.json()["history"]} == {"Ready"}
    finally:
        hub.stop()


@BOTH_BACKENDS
def test_old_history_goes_also_for_a_cluster_that_stopped_reporting(database: Database) -> None:
    hub = InProcessHub(database, retention=Retention(reports=100, days=1)).start()
    try:
        silent = create_token(database, "edge-silent")
        for sequence in range(1, 11):
            _post(hub, silent, "edge-silent", sequence)
        hub.clock.advance(2 * 86400)
        _eventually(lambda: _stored(database, "edge-silent") == [10])  # the current report stays
        viewer = create_viewer(database)
        detail = httpx.get(
            hub.url + "/api/v1/clusters/edge-silent", headers={"Authorization": f"Bearer {viewer}"}
        )
        assert detail.json()["connectivity"] == "Offline"
        assert detail.json()["report"]["sequence"] == 10
        _post(hub, silent, "edge-silent", 11)  # it comes back: the next report is stored as usual
        stored = _stored(database, "edge-silent")
        assert stored[-1] == 11
        assert set(stored) <= {10, 11}  # 10 may be swept by now: older than a day and no longer current
    finally:
        hub.stop()


def test_a_silent_clusters_old_history_goes_while_the_writer_is_never_idle(tmp_path: Path) -> None:
    """The sweep rides along with busy groups: a writer that never waits UPKEEP_SECONDS for a report
    still cuts back the history of a cluster that stopped reporting."""
    hub = InProcessHub(tmp_path / "hub", retention=Retention(reports=100, days=1)).start()
    try:
        silent, busy = create_token(hub.data_dir, "edge-silent"), create_token(hub.data_dir, "edge-busy")
        for sequence in range(1, 11):
            _post(hub, silent, "edge-silent", sequence)
        hub.clock.advance(2 * 86400)
        deadline, sequence = time.monotonic() + 10, 0
        while _stored(hub.data_dir, "edge-silent") != [10]:
            assert time.monotonic() < deadline, _stored(hub.data_dir, "edge-silent")
            for _ in range(5):  # a report every few milliseconds: the writer's queue is never idle
                sequence += 1
                _post(hub, busy, "edge-busy", sequence)
        assert len(_stored(hub.data_dir, "edge-busy")) <= 100  # cut back by count as it goes
    finally:
        hub.stop()


def test_bodies_are_stored_compressed_and_read_back(tmp_path: Path) -> None:
    hub = InProcessHub(tmp_path / "hub").start()
    try:
        token = create_token(hub.data_dir, "edge-1")
        _post(hub, token, "edge-1", 1)
        raw = len(make_report("edge-1", 1, [make_bundle(f"b{i}") for i in range(5)]).to_json())
        with sqlite3.connect(hub.data_dir / store.DB_NAME) as conn:
            (stored,) = conn.execute("SELECT length(body) FROM reports").fetchone()
        assert stored < raw / 2
        viewer = create_viewer(hub.data_dir)
        detail = httpx.get(
            hub.url + "/api/v1/clusters/edge-1", headers={"Authorization": f"Bearer {viewer}"}
        ).json()
        assert [b["bundle"] for b in detail["report"]["bundles"]] == [f"b{i}" for i in range(5)]
    finally:
        hub.stop()


def test_restart_serves_the_same_fleet_from_stored_summaries(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    hub = InProcessHub(data_dir).start()
    try:
        for index in range(30):
            name = f"edge-{index}"
            token = create_token(data_dir, name)
            for sequence in (1, 2, 3):
                _post(hub, token, name, sequence)
        auth = {"Authorization": f"Bearer {viewer}"}
        before = [
            httpx.get(hub.url + path, headers=auth).json() for path in ("/api/v1/clusters", "/api/v1/bundles")
        ]
    finally:
        hub.stop()
    with sqlite3.connect(data_dir / store.DB_NAME) as conn:  # a restart must not need the bodies
        conn.execute("UPDATE reports SET body = x'00'")
    restarted = InProcessHub(data_dir, clock=hub.clock).start()
    try:
        after = [
            httpx.get(restarted.url + p, headers=auth).json() for p in ("/api/v1/clusters", "/api/v1/bundles")
        ]
        assert after == before
        assert stored_report_count(data_dir) == 90
    finally:
        restarted.stop()


def test_the_wal_is_truncated_once_it_outgrew_its_limit(tmp_path: Path, monkeypatch: object) -> None:
    """A long read kept checkpoints from finishing, so the WAL grew; once it ends, with no further
    writes, the hub truncates it back (a passive checkpoint alone would leave the file as large)."""
    monkeypatch.setattr(store, "WAL_SIZE_LIMIT", 256 * 1024)  # type: ignore[attr-defined]
    hub = InProcessHub(tmp_path / "hub").start()
    try:
        token = create_token(hub.data_dir, "edge-1")
        _post(hub, token, "edge-1", 1)
        reader = sqlite3.connect(hub.data_dir / store.DB_NAME)
        reader.execute("BEGIN")
        reader.execute(
            "SELECT count(*) FROM reports"
        ).fetchone()  # holds a snapshot: no checkpoint can finish
        for sequence in range(2, 200):
            _post(hub, token, "edge-1", sequence)
        grown = store.wal_bytes(hub.data_dir)
        assert grown > 2 * store.WAL_SIZE_LIMIT
        reader.rollback()
        reader.close()
        _eventually(lambda: store.wal_bytes(hub.data_dir) <= store.WAL_SIZE_LIMIT)
        _post(hub, token, "edge-1", 200)  # and ingest goes on
    finally:
        hub.stop()
