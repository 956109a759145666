"""Read access, the JSON API, connectivity over time and the HTML pages of a real hub."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.hub.conftest import HubUnderTest
from tests.integration.hub.hubserver import InProcessHub
from tests.unit.hub.factory import make_bundle, make_report


def _seed(hub: HubUnderTest) -> None:
    fleet = [
        (
            "eu-1",
            {"region": "eu", "tier": "edge"},
            [make_bundle("web", "Ready", "c2"), make_bundle("db", "Ready")],
        ),
        ("eu-2", {"region": "eu", "tier": "prod"}, [make_bundle("web", "Failed", "c2", message="boom")]),
        ("us-1", {"region": "us", "tier": "edge"}, [make_bundle("web", "Ready", "c1")]),
    ]
    for name, labels, bundles in fleet:
        assert hub.post(make_report(name, 1, bundles, labels=labels), hub.token(name)).status_code == 202


def test_reads_need_a_viewer_credential(hub: HubUnderTest) -> None:
    for path in ("/", "/api/v1/summary", "/api/v1/clusters", "/metrics"):
        response = hub.client.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
    basic = base64.b64encode(f"anyone:{hub.viewer_token}".encode()).decode()
    assert hub.client.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert hub.read("/api/v1/summary").status_code == 200
    cluster_token = hub.token("eu-1")
    assert hub.client.get("/", headers={"Authorization": f"Bearer {cluster_token}"}).status_code == 401
    assert hub.client.get("/healthz").json() == {"status": "ok"}
    assert hub.client.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")


def test_public_read_serves_without_credentials(tmp_path: Path) -> None:
    server = InProcessHub(tmp_path / "hub", public_read=True).start()
    try:
        assert httpx.get(server.url + "/api/v1/summary").status_code == 200
        assert httpx.get(server.url + "/").status_code == 200
    finally:
        server.stop()


def test_cluster_list_filters(hub: HubUnderTest) -> None:
    _seed(hub)

    def names(**params: str) -> list[str]:
        return sorted(c["name"] for c in hub.read("/api/v1/clusters", **params).json()["clusters"])

    assert names() == ["eu-1", "eu-2", "us-1"]
    assert names(selector="region=eu") == ["eu-1", "eu-2"]
    assert names(selector="region=eu,tier!=prod") == ["eu-1"]
    assert names(health="Failed") == ["eu-2"]
    assert names(health="Ready", selector="tier=edge") == ["eu-1", "us-1"]
    assert names(connectivity="Offline") == []
    page = hub.read("/api/v1/clusters", offset="1", limit="1").json()
    assert page["total"] == 3
    assert [c["name"] for c in page["clusters"]] == ["eu-1"]  # attention first: eu-2 (Failed), then by name
    assert hub.read("/api/v1/clusters", limit="x").json()["field"] == "limit"
    bad = hub.read("/api/v1/clusters", health="Sunny")
    assert bad.status_code == 400
    assert bad.json()["field"] == "health"
    [eu2] = hub.read("/api/v1/clusters", selector="tier=prod").json()["clusters"]
    assert {k: eu2[k] for k in ("name", "health", "connectivity", "commit", "labels")} == {
        "name": "eu-2",
        "health": "Failed",
        "connectivity": "Online",
        "commit": "a1b2c3d",
        "labels": {"region": "eu", "tier": "prod"},
    }


def test_summary_and_bundle_rollout(hub: HubUnderTest) -> None:
    _seed(hub)
    summary = hub.read("/api/v1/summary").json()
    assert summary["clusters"] == 3
    assert summary["health"]["Ready"] == 2
    assert summary["health"]["Failed"] == 1
    assert summary["connectivity"] == {"Offline": 0, "Stale": 0, "Online": 3}
    bundles = {b["name"]: b for b in hub.read("/api/v1/bundles").json()["bundles"]}
    assert set(bundles) == {"web", "db"}
    web = hub.read("/api/v1/bundles/web").json()
    assert web["states"] == {"Failed": 1, "Ready": 2}
    assert [(c["commit"], c["clusters"]) for c in web["commits"]] == [("c2", 2), ("c1", 1)]
    assert web["summary"] == "c2 Ready on 1 of 3, 1 Failed, 1 still on c1"
    assert hub.read("/api/v1/bundles/nope").status_code == 404
    assert hub.read("/api/v1/clusters/nope").status_code == 404


def test_connectivity_moves_with_the_clock_and_back(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    hub.post(make_report("edge-1", 1, interval_seconds=60), token)

    def state() -> str:
        return str(hub.read("/api/v1/clusters/edge-1").json()["connectivity"])

    assert state() == "Online"
    hub.clock.advance(180)
    assert state() == "Online"
    hub.clock.advance(1)
    assert state() == "Stale"
    hub.clock.advance(600)
    assert state() == "Offline"
    page = hub.read("/").text
    assert "Offline · last report 13m ago" in page
    assert "was Ready" in page
    summary = hub.read("/api/v1/summary").json()
    assert summary["ready_and_online"] == 0
    assert (summary["states"]["Offline"], summary["states"]["Ready"]) == (1, 0)  # connectivity first
    assert summary["health"]["Ready"] == 1  # by health alone it still counts as Ready
    hub.post(make_report("edge-1", 2, interval_seconds=60), token)
    assert state() == "Online"
    assert hub.read("/api/v1/summary").json()["states"]["Ready"] == 1


def test_a_late_report_counts_as_a_sign_of_life(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    hub.post(make_report("edge-1", 9, interval_seconds=60), token)
    hub.clock.advance(3600)
    assert hub.read("/api/v1/clusters/edge-1").json()["connectivity"] == "Offline"
    assert hub.post(make_report("edge-1", 4, interval_seconds=60), token).json()["result"] == "late"
    detail = hub.read("/api/v1/clusters/edge-1").json()
    assert (detail["connectivity"], detail["sequence"]) == ("Online", 9)


def test_cluster_and_bundle_pages(hub: HubUnderTest) -> None:
    _seed(hub)
    cluster = hub.read("/clusters/eu-2").text
    assert "<pre>boom</pre>" in cluster
    assert "1.2.3" in cluster
    bundle = hub.read("/bundles/web").text
    assert "c2 Ready on 1 of 3, 1 Failed, 1 still on c1" in bundle
    assert hub.read("/clusters/nope").status_code == 404
    assert hub.read("/", health="Sunny").status_code == 400


def test_token_cli(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "hub.cli", *args, "--data-dir", str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)

    created = cli("token", "create", "edge-7")
    assert created.returncode == 0
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("flt_")
    listed = cli("token", "list")
    assert "edge-7" in listed.stdout
    assert token not in listed.stdout
    assert token not in (tmp_path / "hub.sqlite3").read_bytes().decode("latin-1")  # stored hashed only
    bad = cli("token", "create", "Not A Name")
    assert bad.returncode == 2
    assert "CLUSTER: must be a DNS-style name" in bad.stderr
    assert cli("token", "revoke", "edge-7").returncode == 0
    assert "edge-7" not in cli("token", "list").stdout
    assert cli("token", "revoke", "edge-7").returncode == 1
    viewer = cli("viewer", "create", "ops")
    assert viewer.stdout.strip().splitlines()[-1].startswith("flt_")
