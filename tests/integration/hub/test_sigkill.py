"""A hub killed with SIGKILL in the middle of ingest loses no report it had acknowledged."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from hub.database import Database
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.hubserver import SubprocessHub, create_tokens
from tests.unit.hub.factory import make_report

CLUSTERS = 24
ROUNDS = 40  # below the per-cluster history bound, so every acknowledged report must still be there


@BOTH_BACKENDS
def test_sigkill_during_ingest_loses_no_acknowledged_report(tmp_path: Path, database: Database) -> None:
    names = [f"edge-{i}" for i in range(CLUSTERS)]
    tokens = create_tokens(database, "cluster", names)
    hub = SubprocessHub(database, log_dir=tmp_path).start()
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

    conn = database.connect()
    stored = {(name, entry.sequence) for name in names for entry in conn.history(name, ROUNDS)}
    conn.close()
    assert acknowledged <= stored, sorted(acknowledged - stored)[:5]

    restarted = SubprocessHub(database, extra_args=("--public-read",), log_dir=tmp_path).start()
    try:
        clusters = httpx.get(restarted.url + "/api/v1/clusters").json()["clusters"]
        current = {c["name"]: c["sequence"] for c in clusters}
        for name, sequence in acknowledged:
            assert current[name] >= sequence
        after = httpx.post(  # the next ordinary report after the crash
            restarted.url + "/api/v1/reports",
            content=make_report(names[0], ROUNDS + 1).to_json(),
            headers={"Authorization": f"Bearer {tokens[names[0]]}"},
            timeout=30,
        )
        assert after.json()["result"] == "current"
    finally:
        restarted.stop()
