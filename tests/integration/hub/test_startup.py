"""Start-up with the port open: while the fleet loads, every request gets a fast 503 it can retry."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from hub import app, store
from hub.context import HubConfig, HubContext
from tests.integration.hub.hubserver import InProcessHub, create_token, create_viewer, post_report
from tests.unit.hub.factory import make_report


def test_requests_during_the_load_are_503_with_retry_after_then_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    token = create_token(data_dir, "edge-1")
    first = InProcessHub(data_dir).start()
    assert post_report(first.url, make_report("edge-1", 1), token).status_code == 202
    first.stop()

    release = threading.Event()
    real_open = app.open_context

    def slow_open(config: HubConfig, role: app.Role | None = None) -> HubContext:
        assert release.wait(30), "the test never released the load"
        return real_open(config, role)

    monkeypatch.setattr(app, "open_context", slow_open)
    hub = InProcessHub(data_dir).start(ready=False)
    try:
        auth = {"Authorization": f"Bearer {viewer}"}
        health = httpx.get(hub.url + "/healthz", timeout=5)
        assert health.status_code == 503
        assert health.json()["status"] == "starting"
        for path in ("/", "/api/v1/clusters", "/clusters/edge-1"):
            page = httpx.get(hub.url + path, headers=auth, timeout=5)
            assert (page.status_code, page.headers["retry-after"]) == (503, "2"), path
        early = post_report(hub.url, make_report("edge-1", 2), token)
        assert (early.status_code, early.headers["retry-after"]) == (503, "2")
        assert "starting" in early.json()["error"]

        release.set()
        for _ in range(500):
            if httpx.get(hub.url + "/healthz", timeout=5).status_code == 200:
                break
            threading.Event().wait(0.02)
        assert httpx.get(hub.url + "/healthz", timeout=5).json() == {"status": "ok"}
        [cluster] = httpx.get(hub.url + "/api/v1/clusters", headers=auth, timeout=5).json()["clusters"]
        assert cluster["sequence"] == 1  # the report refused during the load was not stored
        again = post_report(hub.url, make_report("edge-1", 2), token)  # the agent's retry
        assert again.json() == {"result": "current", "cluster": "edge-1", "sequence": 2}
    finally:
        release.set()
        hub.stop()


def test_damaged_rows_cost_what_they_hold_and_the_hub_still_starts(tmp_path: Path) -> None:
    import sqlite3

    from tests.integration.hub.hubserver import SubprocessHub

    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    tokens = {name: create_token(data_dir, name) for name in ("edge-1", "edge-2")}
    first = InProcessHub(data_dir).start()
    for name, token in tokens.items():
        assert post_report(first.url, make_report(name, 1), token).status_code == 202
    first.stop()
    with sqlite3.connect(data_dir / store.DB_NAME) as conn:  # rows no hub wrote (a damaged disk)
        conn.execute("INSERT INTO fleet_samples (at, states) VALUES (?, ?)", (time.time(), "{not json"))
        conn.execute("UPDATE clusters SET summary = ? WHERE name = 'edge-2'", (b"[not json",))

    hub = SubprocessHub(data_dir).start()
    try:
        auth = {"Authorization": f"Bearer {viewer}"}
        clusters = httpx.get(hub.url + "/api/v1/clusters", headers=auth, timeout=5).json()["clusters"]
        assert [c["name"] for c in clusters] == ["edge-1"]
        assert httpx.get(hub.url + "/api/v1/history", headers=auth, timeout=5).status_code == 200
        said = hub.log_path.read_text()
        assert "fleet_sample_unreadable" in said
        assert "cluster_unreadable" in said
        # the damaged cluster's next report is taken as usual
        assert post_report(hub.url, make_report("edge-2", 2), tokens["edge-2"]).status_code == 202
    finally:
        hub.stop()
