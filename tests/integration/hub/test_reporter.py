"""The agent's reporter against a real hub on loopback: outages, ordering, heartbeats, bad tokens."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import httpx
import pytest

from agent.reporter import Reporter
from hub import reportstore, store
from tests.integration.hub.hubserver import InProcessHub, create_token, create_viewer, free_port
from tests.unit.hub.factory import make_bundle, make_report


class TickingClock:
    """Each reading is one second later: the hub's received_at then records the arrival order."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1_800_000_000)

    def __call__(self) -> float:
        return float(next(self._ticks))


def _arrivals(data_dir: Path, cluster: str) -> list[int]:
    conn = store.connect(data_dir)
    try:
        return [h.sequence for h in sorted(reportstore.history(conn, cluster), key=lambda h: h.received_at)]
    finally:
        conn.close()


def test_hub_down_then_back_latest_state_first_then_the_rest_in_order(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    token = create_token(data_dir, "edge-1")
    viewer = create_viewer(data_dir)
    port = free_port()
    reporter = Reporter(
        f"http://127.0.0.1:{port}", token, tmp_path / "agent", first_backoff=0.1, max_backoff=0.5
    )
    try:
        for sequence, state in ((10, "InProgress"), (11, "Degraded"), (12, "Ready")):
            reporter.submit(make_report("edge-1", sequence, [make_bundle("web", state)]))
        time.sleep(0.5)  # the hub is down: every attempt fails, nothing is lost
        assert reporter.pending() == [10, 11, 12]

        hub = InProcessHub(data_dir, clock=TickingClock())  # type: ignore[arg-type]
        hub.port, hub.url = port, f"http://127.0.0.1:{port}"
        hub._server.config.port = port
        hub.start()
        try:
            assert reporter.flush(timeout=20)
            assert _arrivals(data_dir, "edge-1") == [12, 10, 11]
            response = httpx.get(
                f"{hub.url}/api/v1/clusters/edge-1", headers={"Authorization": f"Bearer {viewer}"}
            )
            assert (response.json()["sequence"], response.json()["health"]) == (12, "Ready")
        finally:
            hub.stop()
    finally:
        reporter.close()


def test_heartbeat_arrives_without_a_new_pass(tmp_path: Path) -> None:
    data_dir = tmp_path / "hub"
    token = create_token(data_dir, "edge-1")
    hub = InProcessHub(data_dir).start()
    reporter = Reporter(hub.url, token, tmp_path / "agent")
    try:
        reporter.submit(make_report("edge-1", 1, interval_seconds=1))
        deadline = time.monotonic() + 10
        while len(_arrivals(data_dir, "edge-1")) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        sequences = sorted(_arrivals(data_dir, "edge-1"))
        assert len(sequences) >= 3, sequences  # the report, then heartbeats under new sequence numbers
        assert sequences[0] == 1
    finally:
        reporter.close()
        hub.stop()


def test_a_rejected_report_is_dropped_not_retried_forever(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "hub"
    create_token(data_dir, "edge-1")
    hub = InProcessHub(data_dir).start()
    wrong_token = "flt_0123456789abcdef_wrong-secret-value"
    reporter = Reporter(hub.url.replace("http://", "http://user:pw@"), wrong_token, tmp_path / "agent")
    try:
        reporter.submit(make_report("edge-1", 1))
        assert reporter.flush(timeout=10)
        assert _arrivals(data_dir, "edge-1") == []
    finally:
        reporter.close()
        hub.stop()
    logged = capsys.readouterr()
    assert "report_rejected" in logged.out + logged.err
    assert "wrong-secret-value" not in logged.out + logged.err  # the token is never logged
    assert "user:pw" not in logged.out + logged.err
