"""Operating a real hub with its CLI: token rotation without an outage, fleet-wide token creation,
forgetting a cluster while the hub runs, and repairing state an older hub stored unchecked."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hub import store
from hub.database import Database
from tests.integration.hub.conftest import BOTH_BACKENDS, HubUnderTest
from tests.integration.hub.hubserver import InProcessHub, Where, create_viewer, location_args, post_report
from tests.unit.hub.factory import make_bundle, make_report


def cli(where: Where, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "hub.cli", *args, *location_args(where)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120, input=stdin)


def _until(condition: object, seconds: float = 6.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the running hub did not pick the change up"
        time.sleep(0.1)


@BOTH_BACKENDS
def test_a_token_is_rotated_without_an_outage(hub: HubUnderTest) -> None:
    old = hub.token("edge-1")
    new = hub.token("edge-1")  # a second token of the same cluster: both valid at once
    assert hub.post(make_report("edge-1", 1), old).status_code == 202
    assert hub.post(make_report("edge-1", 2), new).status_code == 202
    listed = cli(hub.database, "token", "list").stdout.splitlines()
    ids = [line.split("\t")[1] for line in listed if line.startswith("edge-1\t")]
    assert len(ids) == 2
    old_id = next(i for i in ids if i in old)
    assert cli(hub.database, "token", "revoke", "edge-1", "--id", old_id).returncode == 0
    _until(lambda: hub.post(make_report("edge-1", 3), old).status_code == 401)
    assert hub.post(make_report("edge-1", 4), new).status_code == 202  # the new one never stopped
    wrong = cli(hub.database, "token", "revoke", "edge-2", "--id", ids[0])
    assert wrong.returncode == 1
    assert "no cluster token with id" in wrong.stderr


@BOTH_BACKENDS
def test_tokens_for_a_whole_fleet_from_one_file(tmp_path: Path, database: Database) -> None:
    names = [f"store-{i:04d}" for i in range(300)]
    listing = tmp_path / "clusters.txt"
    listing.write_text("# stores of the north region\n" + "\n".join(names) + "\n\n")
    created = cli(database, "token", "create", "--from-file", str(listing))
    assert created.returncode == 0, created.stderr
    lines = [line.split("\t") for line in created.stdout.splitlines()]
    assert [name for name, _ in lines] == names
    tokens = dict(lines)
    assert "Created 300 cluster tokens" in created.stderr
    from_stdin = cli(database, "token", "create", "--from-file", "-", stdin="store-9999\n")
    assert from_stdin.stdout.startswith("store-9999\tflt_")
    server = InProcessHub(database).start()
    try:
        for name in (names[0], names[-1]):
            report = make_report(name, 1).to_json()
            response = httpx.post(
                server.url + "/api/v1/reports",
                content=report,
                headers={"Authorization": f"Bearer {tokens[name]}"},
            )
            assert response.status_code == 202
    finally:
        server.stop()
    bad = tmp_path / "bad.txt"
    bad.write_text("good-one\nBad Name\ngood-one\n")
    refused = cli(database, "token", "create", "--from-file", str(bad))
    assert refused.returncode == 2
    assert f"{bad}:2: must be a DNS-style name" in refused.stderr
    assert "more than once" in refused.stderr
    assert "good-one" not in cli(database, "token", "list").stdout  # nothing half-created


@BOTH_BACKENDS
def test_a_cluster_is_forgotten_while_the_hub_runs(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    keep = hub.token("edge-2")
    for sequence in range(1, 4):
        assert hub.post(make_report("edge-1", sequence, [make_bundle("only-here")]), token).status_code == 202
    assert hub.post(make_report("edge-2", 1), keep).status_code == 202
    forgot = cli(hub.database, "cluster", "forget", "edge-1")
    assert forgot.returncode == 0, forgot.stderr
    assert "3 stored report(s), 1 token(s) revoked" in forgot.stdout
    _until(lambda: hub.read("/api/v1/clusters/edge-1").status_code == 404)
    assert [c["name"] for c in hub.read("/api/v1/clusters").json()["clusters"]] == ["edge-2"]
    assert hub.read("/api/v1/bundles/only-here").status_code == 404
    assert hub.read("/api/v1/summary").json()["clusters"] == 1
    assert hub.post(make_report("edge-1", 4), token).status_code == 401  # its token went with it
    assert cli(hub.database, "cluster", "forget", "edge-1").returncode == 1  # nothing left to forget
    # the next ordinary report of another cluster
    assert hub.post(make_report("edge-2", 2), keep).status_code == 202


@BOTH_BACKENDS
def test_forget_keeping_tokens_lets_a_cluster_start_afresh(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    assert hub.post(make_report("edge-1", 10**9, [make_bundle("web", "Failed")]), token).status_code == 202
    assert cli(hub.database, "cluster", "forget", "edge-1", "--keep-tokens").returncode == 0
    _until(lambda: hub.read("/api/v1/clusters/edge-1").status_code == 404)
    assert (
        hub.post(make_report("edge-1", 5, [make_bundle("web", "Ready")]), token).json()["result"] == "current"
    )
    assert hub.read("/api/v1/clusters/edge-1").json()["health"] == "Ready"


def test_state_an_older_hub_stored_unchecked_is_repaired(tmp_path: Path) -> None:
    """A lone surrogate an older hub accepted: pages work, the cluster is left out, forget removes it."""
    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    conn = store.connect(data_dir)
    token = store.create_token(conn, "cluster", "edge-bad")
    good = make_report("edge-ok", 1).to_json().encode()
    bad = make_report("edge-bad", 1, labels={"region": "XX"}).to_json().replace("XX", "\\ud800").encode()
    for name, body in (("edge-ok", good), ("edge-bad", bad)):  # as version 1 of the schema stored them
        conn.execute(
            "INSERT INTO reports (cluster, sequence, received_at, body) VALUES (?, 1, 1.0, ?)", (name, body)
        )
        conn.execute(
            "INSERT INTO clusters (name, sequence, reported_at, last_seen) VALUES (?, 1, 1.0, 1.0)", (name,)
        )
    conn.close()
    server = InProcessHub(data_dir).start()
    try:
        auth = {"Authorization": f"Bearer {viewer}"}
        for path in ("/", "/api/v1/clusters", "/api/v1/summary", "/api/v1/bundles", "/clusters/edge-ok"):
            assert httpx.get(server.url + path, headers=auth).status_code == 200, path
        names = [
            c["name"] for c in httpx.get(server.url + "/api/v1/clusters", headers=auth).json()["clusters"]
        ]
        assert names == ["edge-ok"]
        assert cli(data_dir, "cluster", "forget", "edge-bad", "--keep-tokens").returncode == 0
        with sqlite3.connect(data_dir / store.DB_NAME) as check:
            assert check.execute("SELECT count(*) FROM reports WHERE cluster = 'edge-bad'").fetchone() == (0,)
        assert post_report(server.url, make_report("edge-bad", 2), token).json()["result"] == "current"
    finally:
        server.stop()


def test_schema_version_is_recorded_and_a_newer_database_is_refused(tmp_path: Path) -> None:
    conn = store.connect(tmp_path)
    assert store.schema_version(conn) == len(store.MIGRATIONS)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(store.MIGRATIONS) + 1,))
    conn.close()
    refused = cli(tmp_path, "token", "list")
    assert refused.returncode == 1
    assert "newer than this hub knows" in refused.stderr
