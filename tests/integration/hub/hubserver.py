"""Real hubs on loopback for tests: in-process uvicorn (with a controllable clock) or a subprocess.

Both work outside pytest too (the benchmark and e2e scenarios use them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from hub.app import create_app
from hub.connectivity import Thresholds
from hub.context import HubConfig
from hub.contract import StatusReport
from hub.database import Database
from hub.limits import Limits, server_options
from hub.reportstore import Retention

Where = Path | Database  # a SQLite data directory, or any database


def database_of(where: Where) -> Database:
    return where if isinstance(where, Database) else Database(data_dir=where)


def location_args(where: Where) -> list[str]:
    """The command-line options that name ``where`` (for `flotilla-hub`)."""
    database = database_of(where)
    return ["--database-url", database.url] if database.url else ["--data-dir", str(database.data_dir)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ManualClock:
    """The hub's clock, moved by the test."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def create_tokens(where: Where, kind: str, owners: list[str]) -> dict[str, str]:
    conn = database_of(where).connect()
    try:
        return conn.create_tokens(kind, owners)
    finally:
        conn.close()


def create_token(where: Where, cluster: str) -> str:
    return create_tokens(where, "cluster", [cluster])[cluster]


def create_viewer(where: Where, name: str = "ops") -> str:
    return create_tokens(where, "viewer", [name])[name]


def post_report(url: str, report: StatusReport, token: str) -> httpx.Response:
    """POST one report to the hub at ``url`` with a cluster token."""
    return httpx.post(
        url + "/api/v1/reports",
        content=report.to_json(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,  # the agent's own timeout is 15 s; httpx's 5 s default is tight on a loaded machine
    )


def stored_report_count(where: Where) -> int:
    conn = database_of(where).connect()
    try:
        return conn.count_reports()
    finally:
        conn.close()


class InProcessHub:
    """uvicorn serving the hub app in a thread of this process."""

    def __init__(
        self,
        where: Where,
        *,
        public_read: bool = False,
        clock: ManualClock | None = None,
        max_body: int = 1024 * 1024,
        thresholds: Thresholds | None = None,
        limits: Limits | None = None,
        retention: Retention | None = None,
        read_cache_seconds: float = 0.0,  # tests read their own writes at once
    ) -> None:
        self.database = database_of(where)
        self.data_dir = self.database.data_dir or Path()
        self.clock = clock or ManualClock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = HubConfig(
            data_dir=self.data_dir,
            database_url=self.database.url,
            public_read=public_read,
            thresholds=thresholds or Thresholds(),
            max_body=max_body,
            clock=self.clock,
            retention=retention or Retention(),
            read_cache_seconds=read_cache_seconds,
            rollout_view_seconds=read_cache_seconds,  # 0 unless asked: every gate evaluated afresh
        )
        options = server_options(limits or Limits())
        self._server = uvicorn.Server(
            uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port, **options)
        )
        self._thread = threading.Thread(target=self._server.run, name="hub-under-test", daemon=True)

    def start(self, *, ready: bool = True) -> InProcessHub:
        """Serve; with ``ready``, return once the fleet is loaded (else as soon as the port is open)."""
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the in-process hub did not start")
            time.sleep(0.02)
        while ready and httpx.get(self.url + "/healthz", timeout=5).status_code != 200:  # still loading
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the in-process hub did not finish loading")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)


class SubprocessHub:
    """``flotilla-hub serve`` as a real process (to be killed with SIGKILL, restarted on the same port)."""

    def __init__(
        self,
        where: Where,
        *,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
        log_dir: Path | None = None,
    ) -> None:
        self.where = where
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.log_dir = log_dir or database_of(where).data_dir or Path(".")
        self.log_path = self.log_dir / f"hub-{self.port}.log"
        self.data_dir = database_of(where).data_dir or self.log_dir

    def start(self, timeout: float = 30, *, ready: bool = True) -> SubprocessHub:
        """Start the process; with ``ready``, return once /healthz says the fleet is loaded."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "hub.cli", "serve", *location_args(self.where)]
        command += ["--port", str(self.port), *self.extra_args]
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[3], env=dict(os.environ)
        )
        log.close()
        deadline = time.monotonic() + timeout
        while ready and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        if not ready:
            return self
        raise RuntimeError(f"hub did not answer /healthz within {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def log_events(hub: SubprocessHub, name: str) -> list[dict[str, object]]:
    """The hub's log events called ``name``, oldest first."""
    found = []
    for line in hub.log_path.read_text().splitlines():
        if line.startswith("{") and f'"{name}"' in line:
            event = json.loads(line)
            if event.get("event") == name:
                found.append(event)
    return found


def reader_pid(hub: SubprocessHub, ready: int = 1, timeout: float = 60) -> int:
    """The pid of the reader process once ``ready`` of them have reported ready in the hub's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = log_events(hub, "reader_ready")
        if len(events) >= ready:
            pid = events[ready - 1]["pid"]
            assert isinstance(pid, int)
            return pid
        time.sleep(0.05)
    raise AssertionError(f"no reader_ready #{ready} in {hub.log_path.read_text()[-3000:]}")
