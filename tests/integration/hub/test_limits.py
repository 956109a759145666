"""Connection limits of a real `flotilla-hub serve`: idle and slow sockets cannot take the hub away
from agents and viewers, overload is shed with a fast 503, and the log stays short."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.hub.hubserver import SubprocessHub, create_token, create_viewer, reader_pid
from tests.unit.hub.factory import make_report

CAP = 40


@pytest.fixture(params=["reader-process", "one-process"])
def limited(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[SubprocessHub, str]]:
    """A hub with small limits: with a reader process (the main process routes every connection
    first, hub.dispatch), and in one process (uvicorn's protocol alone, hub.limits)."""
    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    processes = "1" if request.param == "reader-process" else "0"
    hub = SubprocessHub(
        data_dir,
        extra_args=(
            *("--max-connections", str(CAP), "--header-timeout", "1", "--idle-timeout", "1"),
            *("--read-processes", processes),
        ),
    ).start()
    if processes == "1":
        reader_pid(hub)  # the limits apply while connections are being routed too
    try:
        yield hub, viewer
    finally:
        hub.stop()


def _open(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sockets.append(sock)
    return sockets


def _server_sockets(pid: int) -> int:
    """Sockets the hub process holds; a descriptor closed while it is being counted is not one."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def test_many_idle_sockets_do_not_stop_the_hub(limited: tuple[SubprocessHub, str]) -> None:
    hub, viewer = limited
    assert hub.process is not None
    idle = _open(hub.port, 10 * CAP)  # ten times the cap, sending nothing
    try:
        response = httpx.get(
            hub.url + "/api/v1/summary", headers={"Authorization": f"Bearer {viewer}"}, timeout=5
        )
        assert response.status_code == 200
        # the server holds at most the cap (closed connections leave on the next loop turns)
        deadline = time.monotonic() + 3
        while _server_sockets(hub.process.pid) > CAP + 2:  # + the listener and one in transit
            assert time.monotonic() < deadline, _server_sockets(hub.process.pid)
            time.sleep(0.1)
    finally:
        for sock in idle:
            sock.close()
    token = create_token(hub.data_dir, "edge-1")
    report = httpx.post(
        hub.url + "/api/v1/reports",
        content=make_report("edge-1", 1).to_json(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert report.status_code == 202


def test_headers_that_trickle_in_are_cut_off(limited: tuple[SubprocessHub, str]) -> None:
    hub, _ = limited
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as sock:
        _trickle_is_cut_off(sock, b"/")


def _trickle_is_cut_off(sock: socket.socket, path: bytes) -> None:
    """Send a request's headers a byte every 0.1 s: the hub answers 408 (or closes) within seconds."""
    started = time.monotonic()
    answer = b""
    with contextlib.suppress(OSError):
        for char in b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            sock.sendall(bytes([char]))
            time.sleep(0.1)
    with contextlib.suppress(OSError):
        answer = sock.recv(1000)
    assert time.monotonic() - started < 4
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408")


def test_a_kept_alive_connection_is_closed_when_idle(limited: tuple[SubprocessHub, str]) -> None:
    hub, viewer = limited
    with httpx.Client(base_url=hub.url, headers={"Authorization": f"Bearer {viewer}"}) as client:
        first = client.get("/healthz")
        time.sleep(2.5)
        second = client.get("/healthz")  # httpx reconnects: the server closed the idle connection
        assert (first.status_code, second.status_code) == (200, 200)


def test_when_every_connection_is_busy_new_ones_get_a_fast_503(limited: tuple[SubprocessHub, str]) -> None:
    hub, viewer = limited
    token = create_token(hub.data_dir, "edge-1")
    busy = _open(hub.port, CAP)
    try:
        for sock in busy:  # a request in progress on each: headers sent, the body still to come
            sock.sendall(
                f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{".encode()
            )
        time.sleep(0.5)
        started = time.monotonic()
        shed = httpx.get(hub.url + "/healthz", timeout=5)
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "1"
        assert time.monotonic() - started < 1
    finally:
        for sock in busy:
            sock.close()
    time.sleep(0.3)
    assert (
        httpx.get(hub.url + "/api/v1/summary", headers={"Authorization": f"Bearer {viewer}"}).status_code
        == 200
    )


def test_overload_logs_are_rate_limited(limited: tuple[SubprocessHub, str]) -> None:
    hub, _ = limited
    before = hub.log_path.read_text().count("\n")
    for _ in range(5):
        for sock in _open(hub.port, 3 * CAP):
            sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            sock.close()
    time.sleep(1.5)  # header timeouts fire too
    added = hub.log_path.read_text().count("\n") - before
    assert added < 15, hub.log_path.read_text()[-3000:]


def test_headers_that_trickle_in_on_a_kept_alive_connection_are_cut_off(
    limited: tuple[SubprocessHub, str],
) -> None:
    """A whole request costs no header timer; the next one on the same connection still gets one."""
    hub, _ = limited
    token = create_token(hub.data_dir, "edge-1")
    body = make_report("edge-1").to_json().encode()
    head = (
        f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=5) as sock:
        sock.sendall(head + body)
        answer = b""
        while not answer.endswith(b"}"):  # the whole answer (its head and body may come apart)
            answer += sock.recv(1000)
        assert answer.startswith(b"HTTP/1.1 202")
        _trickle_is_cut_off(sock, b"/healthz")
