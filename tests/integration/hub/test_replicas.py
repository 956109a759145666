"""Two hub replicas on one real PostgreSQL database: each serves what the other accepted, tokens and
forgets take effect on both, one may die while the other serves, and both may start at once on an
empty database."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hub import pg_schema
from hub.app import CREDENTIALS_REFRESH_SECONDS
from hub.database import Database
from hub.replicas import SYNC_SECONDS
from tests.integration.hub.hubserver import (
    InProcessHub,
    ManualClock,
    SubprocessHub,
    create_token,
    create_viewer,
    location_args,
    post_report,
)
from tests.unit.hub.factory import make_bundle, make_report

STALENESS = SYNC_SECONDS + 2.0  # the documented bound, with room for a loaded machine
TOKEN_DELAY = CREDENTIALS_REFRESH_SECONDS + 3.0


@pytest.fixture
def shared(postgres: object) -> Database:
    return Database(url=postgres.new_database())  # type: ignore[attr-defined]


@pytest.fixture
def pair(shared: Database) -> Iterator[tuple[InProcessHub, InProcessHub, str]]:
    viewer = create_viewer(shared)
    a, b = InProcessHub(shared).start(), InProcessHub(shared).start()
    yield a, b, viewer
    a.stop()
    b.stop()


def _get(hub: InProcessHub | SubprocessHub, path: str, viewer: str) -> httpx.Response:
    return httpx.get(hub.url + path, headers={"Authorization": f"Bearer {viewer}"}, timeout=30)


def _within(seconds: float, condition: Callable[[], bool], what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"{what} not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


def _cluster(hub: InProcessHub | SubprocessHub, name: str, viewer: str) -> dict[str, object] | None:
    response = _get(hub, f"/api/v1/clusters/{name}", viewer)
    return response.json() if response.status_code == 200 else None


def test_a_report_accepted_by_one_replica_is_served_by_the_other(
    pair: tuple[InProcessHub, InProcessHub, str],
) -> None:
    a, b, viewer = pair
    token = create_token(a.database, "edge-1")
    assert (
        post_report(a.url, make_report("edge-1", 1, [make_bundle("web", "Ready")]), token).status_code == 202
    )
    _within(STALENESS, lambda: (_cluster(b, "edge-1", viewer) or {}).get("sequence") == 1, "seen on B")
    detail = _cluster(b, "edge-1", viewer)
    assert detail is not None
    assert detail["report"] is not None  # B reads the stored report too
    # the same cluster now reports through B (a load balancer moved it): A follows, nothing goes back
    failed = make_report("edge-1", 2, [make_bundle("web", "Failed")])
    assert post_report(b.url, failed, token).json()["result"] == "current"
    _within(STALENESS, lambda: (_cluster(a, "edge-1", viewer) or {}).get("health") == "Failed", "seen on A")
    late = post_report(a.url, make_report("edge-1", 1, [make_bundle("web", "Ready")]), token)
    assert late.json()["result"] == "duplicate"
    older = post_report(a.url, make_report("edge-1", 0, [make_bundle("web", "Ready")]), token)
    assert older.json()["result"] == "late"  # the database, not A's memory, decides
    time.sleep(STALENESS)
    for hub in (a, b):
        seen = _cluster(hub, "edge-1", viewer)
        assert seen is not None
        assert (seen["sequence"], seen["health"]) == (2, "Failed")
        assert _get(hub, "/api/v1/bundles/web", viewer).json()["states"]["Failed"] == 1


def test_tokens_and_forgets_take_effect_on_both(pair: tuple[InProcessHub, InProcessHub, str]) -> None:
    a, b, viewer = pair
    token = create_token(a.database, "edge-1")
    assert post_report(b.url, make_report("edge-1", 1), token).status_code == 202  # new: works at once
    cli = [sys.executable, "-m", "hub.cli"]
    revoked = subprocess.run(
        [*cli, "token", "revoke", "edge-1", *location_args(a.database)], capture_output=True, check=False
    )
    assert revoked.returncode == 0, revoked.stderr
    for sequence, hub in enumerate((a, b), start=2):
        _within(
            TOKEN_DELAY,
            lambda hub=hub, s=sequence: (
                post_report(hub.url, make_report("edge-1", s), token).status_code == 401
            ),
            "the revoked token refused",
        )
    forgot = subprocess.run(
        [*cli, "cluster", "forget", "edge-1", *location_args(a.database)], capture_output=True, check=False
    )
    assert forgot.returncode == 0, forgot.stderr
    for hub in (a, b):
        _within(TOKEN_DELAY, lambda hub=hub: _cluster(hub, "edge-1", viewer) is None, "forgotten")
    fresh = create_token(a.database, "edge-2")  # the next ordinary report, through either replica
    assert post_report(b.url, make_report("edge-2", 1), fresh).status_code == 202
    _within(STALENESS, lambda: _cluster(a, "edge-2", viewer) is not None, "seen on A")


def test_a_replica_that_lost_its_connections_catches_up(pair: tuple[InProcessHub, InProcessHub, str]) -> None:
    a, b, viewer = pair
    token = create_token(a.database, "edge-1")
    assert post_report(a.url, make_report("edge-1", 1), token).status_code == 202
    assert a.database.url is not None
    with pg_schema.connect(a.database.url) as admin:  # what a database restart does to every session
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'flotilla-hub' AND pid <> pg_backend_pid()"
        )
    for sequence in (2, 3):  # B's first report after the cut is not lost: its writer reconnects
        response = post_report(b.url, make_report("edge-1", sequence), token)
        assert response.status_code == 202, response.text
        assert response.json()["result"] == "current"
    _within(STALENESS + 2, lambda: (_cluster(a, "edge-1", viewer) or {}).get("sequence") == 3, "A caught up")


def test_one_replica_killed_the_other_keeps_serving(tmp_path: Path, shared: Database) -> None:
    viewer = create_viewer(shared)
    tokens = {f"edge-{i}": create_token(shared, f"edge-{i}") for i in range(4)}
    a = SubprocessHub(shared, log_dir=tmp_path).start()
    b = SubprocessHub(shared, log_dir=tmp_path).start()
    try:
        for name, token in tokens.items():
            assert post_report(a.url, make_report(name, 1), token).status_code == 202
        a.kill()
        for name, token in tokens.items():  # the agents that used A move to B
            assert post_report(b.url, make_report(name, 2), token).json()["result"] == "current"
        listing = _get(b, "/api/v1/clusters", viewer).json()
        assert {(c["name"], c["sequence"]) for c in listing["clusters"]} == {(n, 2) for n in tokens}
        restarted = SubprocessHub(shared, port=a.port, log_dir=tmp_path).start()  # A comes back: current
        listing = _get(restarted, "/api/v1/clusters", viewer).json()
        assert {c["sequence"] for c in listing["clusters"]} == {2}
        restarted.stop()
    finally:
        a.kill()
        b.stop()


def test_two_replicas_starting_at_once_migrate_an_empty_database_once(
    tmp_path: Path, shared: Database
) -> None:
    hubs = [SubprocessHub(shared, log_dir=tmp_path / str(i)) for i in range(2)]
    errors: list[BaseException] = []

    def start(hub: SubprocessHub) -> None:
        try:
            hub.start(timeout=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(hub,)) for hub in hubs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert shared.url is not None
        with pg_schema.connect(shared.url, create=False) as conn:
            rows = conn.execute("SELECT version FROM flotilla_schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, len(pg_schema.MIGRATIONS) + 1))
        token = create_token(shared, "edge-1")  # and both serve
        for sequence, hub in enumerate(hubs, start=1):
            assert post_report(hub.url, make_report("edge-1", sequence), token).json()["result"] == "current"
    finally:
        for hub in hubs:
            hub.stop()


def test_a_newer_schema_is_refused(shared: Database) -> None:
    assert shared.url is not None
    with pg_schema.connect(shared.url) as conn:
        conn.execute(
            "INSERT INTO flotilla_schema_version (version) VALUES (%s)", (len(pg_schema.MIGRATIONS) + 1,)
        )
    refused = subprocess.run(
        [sys.executable, "-m", "hub.cli", "token", "list", *location_args(shared)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "newer than this hub knows" in refused.stderr


def test_a_rollout_moved_on_by_one_replica_holds_on_the_other(shared: Database) -> None:
    """B starts a rollout; the canary's bake and the release of the next wave then happen on A, and
    B answers from the same rollout (not its own copy, which would start baking afresh)."""
    from tests.integration.hub.test_rollout_gates import C, facts

    clock = ManualClock()
    a, b = InProcessHub(shared, clock=clock).start(), InProcessHub(shared, clock=clock).start()
    try:
        canary, store = create_token(shared, "canary-1"), create_token(shared, "store-1")

        def ask(hub: InProcessHub, token: str, cluster: str, wave: int) -> dict[str, str]:
            body = {"cluster": cluster, "commit": C, "bundles": {"web": facts(wave)}}
            response = httpx.post(
                hub.url + "/api/v1/rollout/gates", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            return dict(response.json()["gates"]["web"])

        assert ask(b, canary, "canary-1", 1)["decision"] == "go"  # B starts the rollout
        assert ask(a, canary, "canary-1", 1)["decision"] == "go"
        ready = dataclasses.replace(
            make_report("canary-1", 1, [make_bundle("web", "Ready", commit=C)], commit=C),
            rollout={"bundles": {"web": facts(1, holding=False)}, "brake": None},
        )
        assert post_report(a.url, ready, canary).status_code == 202
        assert ask(a, store, "store-1", 2)["decision"] == "hold"  # A: the bake starts now
        clock.advance(31)
        time.sleep(STALENESS)  # B has the canary's report by now
        assert ask(b, store, "store-1", 2)["decision"] == "go"  # B: A's bake is over
    finally:
        a.stop()
        b.stop()


def test_a_prune_allowance_given_once_is_taken_by_one_replica_only(shared: Database) -> None:
    allow = ["rollout", "allow-prune", "store-1", "--id", "store-1:0123456789ab", "--by", "ops"]
    allowed = subprocess.run(
        [sys.executable, "-m", "hub.cli", *allow, *location_args(shared)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert allowed.returncode == 0, allowed.stderr
    a, b = shared.connect(), shared.connect()  # the stores of two replicas
    try:
        assert b.take_prune("store-2", "store-1:0123456789ab") is None  # another cluster's ask
        assert a.take_prune("store-1", "store-1:0123456789ab") == "ops"
        assert b.take_prune("store-1", "store-1:0123456789ab") is None  # consumed, on every replica
    finally:
        a.close()
        b.close()
