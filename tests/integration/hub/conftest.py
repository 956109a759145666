"""Fixtures: a real hub on loopback with a controllable clock, its tokens, and a client; on SQLite by
default, on a real PostgreSQL server for the tests marked with ``BOTH_BACKENDS``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.contract import StatusReport
from hub.database import Database
from tests.integration.hub.hubserver import InProcessHub, ManualClock, create_token, create_viewer

# Run a test on SQLite and on PostgreSQL: `@BOTH_BACKENDS` (its hub, or its `database`, is on each).
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@dataclass
class HubUnderTest:
    server: InProcessHub
    viewer_token: str
    client: httpx.Client

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def database(self) -> Database:
        return self.server.database

    @property
    def clock(self) -> ManualClock:
        return self.server.clock

    def token(self, cluster: str) -> str:
        return create_token(self.database, cluster)

    def post(self, report: StatusReport | bytes, token: str, **kwargs: object) -> httpx.Response:
        body = report if isinstance(report, bytes) else report.to_json().encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return self.client.post("/api/v1/reports", content=body, headers=headers)

    def read(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.viewer_token}"})


@pytest.fixture
def backend() -> str:
    """The store under test: SQLite unless a test is parametrised with ``BOTH_BACKENDS``."""
    return "sqlite"


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    """An empty store of the backend under test (a fresh database on the session's PostgreSQL server)."""
    if backend == "sqlite":
        return Database(data_dir=tmp_path / "hub")
    server = request.getfixturevalue("postgres")
    return Database(url=server.new_database())


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One real PostgreSQL server for the whole session (started on first use)."""
    from tests.pgserver import PostgresServer

    server = PostgresServer(fsync=False).start()  # in /tmp: pytest's own is root-only
    yield server
    server.stop()


@pytest.fixture
def hub(database: Database) -> Iterator[HubUnderTest]:
    viewer = create_viewer(database)
    server = InProcessHub(database).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield HubUnderTest(server, viewer, client)
    server.stop()
