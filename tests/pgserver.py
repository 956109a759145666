"""A real PostgreSQL server for tests and benchmarks: Debian's ``postgresql`` binaries, an ordinary
server in a temporary directory, on 127.0.0.1 and a unix socket there, run as an unprivileged user.

``make system-packages`` installs the package. PostgreSQL refuses to run as root: when the tests
run as root (CI), the server runs as ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from tests.integration.hub.hubserver import free_port

USER = "flotilla"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's binaries, or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresServer:
    def __init__(
        self, *, fsync: bool = True, root: Path | None = None, settings: dict[str, str] | None = None
    ) -> None:
        binaries = bin_dir()
        if binaries is None:
            raise RuntimeError(
                "PostgreSQL is not installed: run `make system-packages` (Debian's postgresql)"
            )
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="flotilla-pg-", dir=root or None)).resolve()
        self.data = self.root / "data"
        self.port = free_port()
        self.fsync = fsync
        self.settings = settings or {}  # more server settings (a benchmark's pg_stat_statements)
        self.process: subprocess.Popen[bytes] | None = None
        self._account = pwd.getpwnam("nobody") if os.geteuid() == 0 else None

    def _run_as(self) -> dict[str, int]:
        if self._account is None:
            return {}
        return {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60) -> PostgresServer:
        if self._account is not None:
            os.chown(self.root, self._account.pw_uid, self._account.pw_gid)
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            cwd=self.root,
            **self._run_as(),  # type: ignore[arg-type]
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "fsync": "on" if self.fsync else "off",
            "max_connections": "200",
            "shared_buffers": "128MB",
            **self.settings,
        }
        command = [str(self.bin / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        log = (self.root / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            **self._run_as(),  # type: ignore[arg-type]
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not start: {self.log()[-2000:]}") from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return (self.root / "postgres.log").read_text(errors="replace")

    def new_database(self) -> str:
        """A fresh empty database; its URL."""
        name = "hub_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients are cut off
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)
