"""Reports take a short way through the hub (hub.ingest.IngestFirst) and get the same answers as
through the application: the security headers, 401 with its challenge, and only an exact
``POST /api/v1/reports`` is taken that way."""

from __future__ import annotations

from hub.security import HEADERS
from tests.integration.hub.conftest import HubUnderTest
from tests.unit.hub.factory import make_report


def test_reports_get_the_security_headers_and_the_usual_answers(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    accepted = hub.post(make_report("edge-1", 1), token)
    assert accepted.status_code == 202
    assert accepted.headers["content-type"] == "application/json"
    for name, value in HEADERS:
        assert accepted.headers[name.decode()] == value.decode()
    assert hub.post(make_report("edge-1", 1), token).json()["result"] == "duplicate"

    refused = hub.client.post("/api/v1/reports", content=make_report("edge-1", 2).to_json())
    assert (refused.status_code, refused.headers["www-authenticate"]) == (401, "Bearer")
    assert refused.json() == {"error": "missing or invalid cluster token"}
    assert refused.headers["x-frame-options"] == "DENY"


def test_other_methods_and_paths_still_go_through_the_router(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    headers = {"Authorization": f"Bearer {token}"}
    assert hub.client.get("/api/v1/reports", headers=headers).status_code == 405
    assert hub.client.put("/api/v1/reports", content=b"{}", headers=headers).status_code == 405
    slash = hub.client.post("/api/v1/reports/", content=make_report("edge-1").to_json(), headers=headers)
    assert slash.status_code in (307, 404, 405)  # the router's answer, never a stored report
    listing = hub.read("/api/v1/clusters").json()
    assert listing["total"] == 0
