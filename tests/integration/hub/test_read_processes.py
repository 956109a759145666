"""The hub's reader processes (``serve --read-processes``): reads are served apart from ingest, an
acknowledged report is read back at once from any connection, and a stalled, dead or orphaned
reader process never costs an agent its report."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from hub.database import Database
from hub.readworker import NICENESS
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.integration.hub.hubserver import (
    SubprocessHub,
    create_tokens,
    create_viewer,
    log_events,
    reader_pid,
)
from tests.unit.hub.factory import make_report


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def _post(hub: SubprocessHub, token: str, name: str, sequence: int, timeout: float = 5) -> httpx.Response:
    return httpx.post(
        hub.url + "/api/v1/reports",
        content=make_report(name, sequence).to_json(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


@pytest.fixture
def started(tmp_path: Path, database: Database) -> tuple[SubprocessHub, dict[str, str], str]:
    tokens = create_tokens(database, "cluster", ["edge-1", "edge-2"])
    hub = SubprocessHub(database, log_dir=tmp_path).start()
    return hub, tokens, create_viewer(database)


@BOTH_BACKENDS
def test_an_acknowledged_report_is_read_back_at_once_on_a_new_connection(
    started: tuple[SubprocessHub, dict[str, str], str],
) -> None:
    hub, tokens, viewer = started
    try:
        reader_pid(hub)
        auth = {"Authorization": f"Bearer {viewer}"}
        for sequence in range(1, 31):
            assert _post(hub, tokens["edge-1"], "edge-1", sequence).status_code == 202
            answer = httpx.get(hub.url + "/api/v1/clusters/edge-1", headers=auth, timeout=5)
            assert answer.status_code == 200, answer.text
            assert answer.json()["sequence"] == sequence  # no lag behind the acknowledgement
        page = httpx.get(hub.url + "/", headers=auth, timeout=5)
        assert page.status_code == 200
        assert "edge-1" in page.text
    finally:
        hub.stop()


def test_a_stalled_reader_process_never_delays_ingest(
    started: tuple[SubprocessHub, dict[str, str], str],
) -> None:
    hub, tokens, viewer = started
    auth = {"Authorization": f"Bearer {viewer}"}
    reader = reader_pid(hub)
    assert hub.process is not None
    assert _niceness(reader) == _niceness(hub.process.pid) + NICENESS  # short of cores, reports go first
    try:
        os.kill(reader, signal.SIGSTOP)  # as if it were stuck rendering the biggest page there is
        with pytest.raises(httpx.TimeoutException):  # reads went to the reader process...
            httpx.get(hub.url + "/api/v1/clusters", headers=auth, timeout=1)
        started_at = time.monotonic()
        for sequence in range(1, 21):  # ...and agents' reports do not wait for it
            assert _post(hub, tokens["edge-2"], "edge-2", sequence, timeout=3).status_code == 202
        assert time.monotonic() - started_at < 10
        assert httpx.get(hub.url + "/healthz", timeout=3).json() == {"status": "ok"}  # the main process
        os.kill(reader, signal.SIGCONT)
        answer = httpx.get(hub.url + "/api/v1/clusters/edge-2", headers=auth, timeout=10)
        assert answer.json()["sequence"] == 20
    finally:
        os.kill(reader, signal.SIGCONT)
        hub.stop()


def test_a_reader_process_that_dies_is_replaced_and_reads_go_on(
    started: tuple[SubprocessHub, dict[str, str], str],
) -> None:
    hub, tokens, viewer = started
    auth = {"Authorization": f"Bearer {viewer}"}
    try:
        first = reader_pid(hub)
        os.kill(first, signal.SIGKILL)
        answered = 0
        deadline = time.monotonic() + 30
        while answered < 5 and time.monotonic() < deadline:  # meanwhile the main process answers reads
            try:
                if httpx.get(hub.url + "/api/v1/summary", headers=auth, timeout=3).status_code == 200:
                    answered += 1
            except httpx.TransportError:
                pass  # a connection handed to the reader just before it died
        assert answered == 5
        second = reader_pid(hub, ready=2)
        assert second != first
        assert not _alive(first)
        assert [e["reader"] for e in log_events(hub, "reader_exited")] == ["reader-1"]
        assert _post(hub, tokens["edge-1"], "edge-1", 7).status_code == 202  # the next ordinary report
        answer = httpx.get(hub.url + "/api/v1/clusters/edge-1", headers=auth, timeout=5)
        assert answer.json()["sequence"] == 7
    finally:
        hub.stop()


def test_a_report_on_a_connection_that_went_to_a_reader_is_told_to_reconnect(
    started: tuple[SubprocessHub, dict[str, str], str],
) -> None:
    hub, tokens, viewer = started
    try:
        reader_pid(hub)
        with httpx.Client(base_url=hub.url, timeout=5) as client:  # one kept-alive connection
            assert (
                client.get("/api/v1/summary", headers={"Authorization": f"Bearer {viewer}"}).status_code
                == 200
            )
            report = make_report("edge-1", 1).to_json()
            headers = {"Authorization": f"Bearer {tokens['edge-1']}"}
            refused = client.post("/api/v1/reports", content=report, headers=headers)
            assert refused.status_code == 503
            assert refused.headers["connection"] == "close"
            assert refused.headers["retry-after"] == "0"
            again = client.post("/api/v1/reports", content=report, headers=headers)  # a new connection
            assert again.status_code == 202, again.text
    finally:
        hub.stop()


def test_reader_processes_end_with_the_hub_whether_it_stops_or_dies(
    started: tuple[SubprocessHub, dict[str, str], str], tmp_path: Path, database: Database
) -> None:
    hub, _, _ = started
    reader = reader_pid(hub)
    hub.stop()  # SIGTERM: uvicorn shuts down gracefully, then ends by the signal it caught
    assert hub.process is not None
    assert hub.process.returncode == -signal.SIGTERM
    assert not _alive(reader)

    again = SubprocessHub(database, log_dir=tmp_path / "again").start()
    orphan = reader_pid(again)
    again.kill()  # SIGKILL: no shut-down code runs in the main process
    deadline = time.monotonic() + 15
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(orphan), "a reader process outlived its main process"
