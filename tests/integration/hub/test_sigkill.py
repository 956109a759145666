"""A hub killed with SIGKILL in the middle of ingest loses no report it had acknowledged."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from hub import store
from tests.integration.hub.hubserver import SubprocessHub
from tests.unit.hub.factory import make_report

CLUSTERS = 24
ROUNDS = 40  # below the per-cluster history bound, so every acknowledged report must still be there


def test_sigkill_during_ingest_loses_no_acknowledged_report(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    names = [f"edge-{i}" for i in range(CLUSTERS)]
    conn = store.connect(data_dir)
    tokens = store.create_tokens(conn, "cluster", names)
    conn.close()
    hub = SubprocessHub(data_dir).start()
    acknowledged: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def send(my_clusters: list[str]) -> None:
        with httpx.Client(base_url=hub.url, timeout=5) as client:
            for sequence in range(1, ROUNDS + 1):
                for name in my_clusters:
                    try:
                        response = client.post(
                            "/api/v1/reports",
                            content=make_report(name, sequence).to_json(),
                            headers={"Authorization": f"Bearer {tokens[name]}"},
                        )
                    except httpx.TransportError:
                        return  # the hub is gone
                    if response.status_code in (200, 202):
                        with lock:
                            acknowledged.add((name, sequence))

    senders = [threading.Thread(target=send, args=(names[i::4],)) for i in range(4)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    hub.kill()  # mid-ingest: the senders are still posting
    for sender in senders:
        sender.join(timeout=30)
    assert 150 <= len(acknowledged) < CLUSTERS * ROUNDS, "the kill must land in the middle of ingest"

    with sqlite3.connect(data_dir / store.DB_NAME) as db:
        stored = set(db.execute("SELECT cluster, sequence FROM reports"))
    assert acknowledged <= stored, sorted(acknowledged - stored)[:5]

    restarted = SubprocessHub(data_dir, extra_args=("--public-read",)).start()
    try:
        clusters = httpx.get(restarted.url + "/api/v1/clusters").json()["clusters"]
        current = {c["name"]: c["sequence"] for c in clusters}
        for name, sequence in acknowledged:
            assert current[name] >= sequence
    finally:
        restarted.stop()
