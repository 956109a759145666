"""The OpenAPI description covers every JSON route the hub serves."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Route

from hub.app import create_app
from hub.context import HubConfig
from hub.openapi import OPENAPI


def test_every_api_route_is_described(tmp_path: Path) -> None:
    app = create_app(HubConfig(data_dir=tmp_path))
    api_paths = {
        route.path.replace(":path}", "}")
        for route in app.routes
        if isinstance(route, Route)
        and (route.path.startswith("/api/") or route.path in ("/healthz", "/metrics"))
    }
    api_paths.discard("/api/v1/openapi.json")
    assert api_paths == set(OPENAPI["paths"])
    assert not list(tmp_path.iterdir())  # building the app touches no storage; serving does
