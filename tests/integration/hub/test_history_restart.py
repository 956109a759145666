"""The fleet's history and an error's first sighting survive a restart of the hub (issue 15).

Reports over an hour of hub time make samples and events and one error seen first at the start;
after a restart /api/v1/history and /api/v1/errors say the same, and the next reports extend them.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import psycopg

from hub.database import Database
from hub.timeline import SAMPLE_SECONDS
from hub.writer import UPKEEP_SECONDS
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.hubserver import (
    InProcessHub,
    ManualClock,
    create_token,
    create_viewer,
    post_report,
)
from tests.unit.hub.factory import make_bundle, make_report

NAMES = ["edge-1", "edge-2", "edge-3"]


def _report(name: str, sequence: int, failing: bool) -> Any:
    state = "Failed" if failing else "Ready"
    message = "image pull failed: registry.local/app:1.4 not found" if failing else ""
    return make_report(name, sequence, [make_bundle("web", state, message=message)])


def _views(url: str, viewer: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    auth = {"Authorization": f"Bearer {viewer}"}
    history = httpx.get(url + "/api/v1/history", params={"window": "24h", "limit": "200"}, headers=auth)
    errors = httpx.get(url + "/api/v1/errors", headers=auth)
    assert history.status_code == errors.status_code == 200
    return history.json(), errors.json()["errors"]


@BOTH_BACKENDS
def test_fleet_history_and_first_seen_are_the_same_after_a_restart(database: Database) -> None:
    data_dir = database
    viewer = create_viewer(data_dir)
    tokens = {name: create_token(data_dir, name) for name in NAMES}
    clock = ManualClock()
    started = clock.now
    hub = InProcessHub(data_dir, clock=clock).start()
    try:
        for step in range(1, 13):  # an hour: a sample every SAMPLE_SECONDS, edge-2 failing from the start
            for name in NAMES:
                failing = name == "edge-2" or (name == "edge-3" and 4 <= step <= 6)
                assert post_report(hub.url, _report(name, step, failing), tokens[name]).status_code == 202
            clock.advance(SAMPLE_SECONDS)
        before_history, before_errors = _views(hub.url, viewer)
    finally:
        hub.stop()
    assert len(before_history["samples"]) == 4  # 96 columns over 24 h: one per 900 s
    kinds = {e["kind"] for e in before_history["events"]}
    assert {"new", "state", "error", "cleared"} <= kinds
    [error] = before_errors
    assert (error["clusters"], error["first_seen"]) == (1, started)  # edge-2's current report is newer

    restarted = InProcessHub(data_dir, clock=clock).start()
    try:
        after_history, after_errors = _views(restarted.url, viewer)
        assert after_history == before_history
        assert after_errors == before_errors

        clock.advance(SAMPLE_SECONDS)  # the next ordinary reports extend what was kept
        for name in NAMES:
            assert (
                post_report(restarted.url, _report(name, 13, name != "edge-1"), tokens[name]).status_code
                == 202
            )
        history, errors = _views(restarted.url, viewer)
        assert before_history["total"] < 198  # every event is on the one page compared
        # each cluster back from Stale (three state changes) and edge-3's error appearing
        assert history["total"] == before_history["total"] + 4
        assert sorted(e["kind"] for e in history["events"][:4]) == ["error", "state", "state", "state"]
        assert history["events"][4:] == before_history["events"]
        [error] = errors
        assert (error["clusters"], error["first_seen"]) == (2, started)
    finally:
        restarted.stop()


def test_with_two_replicas_one_saves_the_history_and_a_restart_loads_it(postgres: object) -> None:
    shared = Database(url=postgres.new_database())  # type: ignore[attr-defined]
    viewer = create_viewer(shared)
    tokens = {name: create_token(shared, name) for name in NAMES}
    clock = ManualClock()
    a, b = InProcessHub(shared, clock=clock).start(), InProcessHub(shared, clock=clock).start()
    try:
        for step in (1, 2):
            for name in NAMES:
                hub = a if name != "edge-3" else b  # both replicas take reports
                assert (
                    post_report(hub.url, _report(name, step, name == "edge-2"), tokens[name]).status_code
                    == 202
                )
            clock.advance(SAMPLE_SECONDS)
        deadline = time.monotonic() + 30
        while not _saved(shared, "new", len(NAMES)):  # each replica has seen every cluster appear
            assert time.monotonic() < deadline, "the history was not saved"
            time.sleep(0.1)
        time.sleep(4 * UPKEEP_SECONDS)  # time enough for the other replica to save too, if it did
        before = _views(a.url, viewer)[0]
    finally:
        a.stop()
        b.stop()
    assert shared.url is not None
    with psycopg.connect(shared.url) as conn:
        rows = conn.execute("SELECT cluster, kind, text FROM fleet_events").fetchall()
    assert len(rows) == len(set(rows))  # one replica wrote them: each event once
    assert sorted(c for c, kind, _ in rows if kind == "new") == NAMES
    restarted = InProcessHub(shared, clock=clock).start()
    try:
        after = _views(restarted.url, viewer)[0]
        assert [e["cluster"] for e in after["events"] if e["kind"] == "new"] == [
            e["cluster"] for e in before["events"] if e["kind"] == "new"
        ]
        assert post_report(restarted.url, _report("edge-1", 3, True), tokens["edge-1"]).status_code == 202
        assert _views(restarted.url, viewer)[1][0]["clusters"] == 2  # and the next report counts
    finally:
        restarted.stop()


def _saved(database: Database, kind: str, count: int) -> bool:
    assert database.url is not None
    with psycopg.connect(database.url) as conn:
        row = conn.execute("SELECT count(*) FROM fleet_events WHERE kind = %s", (kind,)).fetchone()
    return row is not None and int(row[0]) >= count
