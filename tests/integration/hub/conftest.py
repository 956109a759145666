"""Fixtures: a real hub on loopback with a controllable clock, its tokens, and a client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.contract import StatusReport
from tests.integration.hub.hubserver import InProcessHub, ManualClock, create_token, create_viewer


@dataclass
class HubUnderTest:
    server: InProcessHub
    viewer_token: str
    client: httpx.Client

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def clock(self) -> ManualClock:
        return self.server.clock

    def token(self, cluster: str) -> str:
        return create_token(self.data_dir, cluster)

    def post(self, report: StatusReport | bytes, token: str, **kwargs: object) -> httpx.Response:
        body = report if isinstance(report, bytes) else report.to_json().encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        return self.client.post("/api/v1/reports", content=body, headers=headers)

    def read(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {self.viewer_token}"})


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubUnderTest]:
    data_dir = tmp_path / "hub"
    viewer = create_viewer(data_dir)
    server = InProcessHub(data_dir).start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield HubUnderTest(server, viewer, client)
    server.stop()
