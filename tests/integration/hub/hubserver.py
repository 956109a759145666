"""Real hubs on loopback for tests: in-process uvicorn (with a controllable clock) or a subprocess.

Both work outside pytest too (the benchmark and e2e scenarios use them).
"""

from __future__ import annotations

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

from hub import store
from hub.app import create_app
from hub.connectivity import Thresholds
from hub.context import HubConfig
from hub.contract import StatusReport
from hub.limits import Limits, server_options
from hub.reportstore import Retention, count_reports


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


def create_token(data_dir: Path, cluster: str) -> str:
    conn = store.connect(data_dir)
    try:
        return store.create_token(conn, "cluster", cluster)
    finally:
        conn.close()


def create_viewer(data_dir: Path, name: str = "ops") -> str:
    conn = store.connect(data_dir)
    try:
        return store.create_token(conn, "viewer", name)
    finally:
        conn.close()


def post_report(url: str, report: StatusReport, token: str) -> httpx.Response:
    """POST one report to the hub at ``url`` with a cluster token."""
    return httpx.post(
        url + "/api/v1/reports",
        content=report.to_json(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,  # the agent's own timeout is 15 s; httpx's 5 s default is tight on a loaded machine
    )


def stored_report_count(data_dir: Path) -> int:
    conn = store.connect(data_dir)
    try:
        return count_reports(conn)
    finally:
        conn.close()


class InProcessHub:
    """uvicorn serving the hub app in a thread of this process."""

    def __init__(
        self,
        data_dir: Path,
        *,
        public_read: bool = False,
        clock: ManualClock | None = None,
        max_body: int = 1024 * 1024,
        thresholds: Thresholds | None = None,
        limits: Limits | None = None,
        retention: Retention | None = None,
        read_cache_seconds: float = 0.0,  # tests read their own writes at once
    ) -> None:
        self.data_dir = data_dir
        self.clock = clock or ManualClock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = HubConfig(
            data_dir=data_dir,
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

    def __init__(self, data_dir: Path, *, port: int | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "hub.log"

    def start(self, timeout: float = 30, *, ready: bool = True) -> SubprocessHub:
        """Start the process; with ``ready``, return once /healthz says the fleet is loaded."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "hub.cli", "serve", "--data-dir", str(self.data_dir)]
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
