"""Hostile reports and queries against a real hub: rejected with the field named, and every page and
API answer keeps working for everyone afterwards."""

from __future__ import annotations

import json

import pytest

from hub.contract import MAX_INT
from tests.integration.hub.conftest import HubUnderTest
from tests.integration.hub.hubserver import stored_report_count
from tests.unit.hub.factory import make_bundle, make_report

_READ_PATHS = ("/", "/api/v1/summary", "/api/v1/clusters", "/api/v1/bundles", "/metrics")


def _all_reads_work(hub: HubUnderTest, *clusters: str) -> None:
    for path in (
        *_READ_PATHS,
        *(f"/clusters/{c}" for c in clusters),
        *(f"/api/v1/clusters/{c}" for c in clusters),
    ):
        assert hub.read(path).status_code == 200, path


@pytest.mark.parametrize(
    ("escape", "field"),
    [
        ("\\ud800", "labels.region"),
        ("\\udfff", "labels.region"),
        ("\\ufffe", "labels.region"),
        ("\\u0000", "labels.region"),
        ("\\ud83f\\udfff", "labels.region"),  # U+1FFFF, a non-character written as a surrogate pair
    ],
)
def test_invalid_unicode_is_422_and_breaks_nothing(hub: HubUnderTest, escape: str, field: str) -> None:
    token = hub.token("edge-1")
    assert hub.post(make_report("edge-1", 1, labels={"region": "eu"}), token).status_code == 202
    body = make_report("edge-1", 2, labels={"region": "PLACEHOLDER"}).to_json().replace("PLACEHOLDER", escape)
    response = hub.post(body.encode(), token)
    assert response.status_code == 422
    assert response.json()["field"] == field
    assert "valid Unicode" in response.json()["error"]
    assert stored_report_count(hub.data_dir) == 1
    _all_reads_work(hub, "edge-1")
    # the next ordinary report is accepted
    assert hub.post(make_report("edge-1", 3, labels={"region": "eu"}), token).status_code == 202


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.__setitem__("sequence", 2**63 - 1), "sequence"),
        (lambda d: d.__setitem__("sequence", MAX_INT + 1), "sequence"),
        (lambda d: d.__setitem__("generated_at", "9999-12-31T23:59:59Z"), "generated_at"),
        (lambda d: d.__setitem__("generated_at", "2026-01-01 00:00:00"), "generated_at"),
        (lambda d: d.__setitem__("surprise", True), "surprise"),
        (lambda d: d["bundles"].append(dict(d["bundles"][0])), "bundles[1].bundle"),
    ],
)
def test_out_of_contract_reports_are_422(hub: HubUnderTest, mutate: object, field: str) -> None:
    token = hub.token("edge-1")
    data = make_report("edge-1", 5).to_json_dict()
    mutate(data)  # type: ignore[operator]
    response = hub.post(json.dumps(data).encode(), token)
    assert (response.status_code, response.json()["field"]) == (422, field)
    assert stored_report_count(hub.data_dir) == 0
    assert hub.post(make_report("edge-1", 6), token).status_code == 202


def test_a_runaway_sequence_cannot_freeze_a_cluster(hub: HubUnderTest) -> None:
    """A sequence far past the hub's clock in ms is refused, so later honest reports stay current."""
    token = hub.token("edge-1")
    assert hub.post(make_report("edge-1", 10), token).status_code == 202
    ahead = int(hub.clock.now * 1000) + 2 * 86_400_000
    response = hub.post(make_report("edge-1", ahead, [make_bundle("web", "Ready")]), token)
    assert (response.status_code, response.json()["field"]) == (422, "sequence")
    # an agent whose state was reset counts from its clock in milliseconds: above what it sent before
    reset = int(hub.clock.now * 1000)
    assert (
        hub.post(make_report("edge-1", reset, [make_bundle("web", "Failed")]), token).json()["result"]
        == "current"
    )
    [cluster] = hub.read("/api/v1/clusters").json()["clusters"]
    assert (cluster["health"], cluster["sequence"]) == ("Failed", reset)


@pytest.mark.parametrize(
    "query",
    [
        {"page": "²"},
        {"page": "0"},
        {"page": "9" * 5000},
        {"page": "-1"},
        {"page": "1e3"},
        {"offset": "١٢"},  # Arabic-Indic digits
        {"limit": "100000"},
        {"limit": "9" * 5000},
        {"offset": " 1"},
    ],
)
def test_bad_numbers_in_queries_are_400_never_500(hub: HubUnderTest, query: dict[str, str]) -> None:
    hub.post(make_report("edge-1", 1, [make_bundle("web")]), hub.token("edge-1"))
    paths = (
        ("/", "/bundles/web")
        if "page" in query
        else ("/api/v1/clusters", "/api/v1/bundles", "/api/v1/bundles/web")
    )
    for path in paths:
        response = hub.read(path, **query)
        assert response.status_code == 400, (path, query, response.status_code)
        assert next(iter(query)) in response.text


def test_pages_carry_security_headers(hub: HubUnderTest) -> None:
    hub.post(make_report("edge-1", 1), hub.token("edge-1"))
    for path in ("/", "/clusters/edge-1", "/api/v1/summary", "/healthz"):
        headers = hub.read(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
    assert hub.client.get("/").headers["x-frame-options"] == "DENY"  # on the 401 too


def test_direction_marks_are_neutralised_on_pages(hub: HubUnderTest) -> None:
    marks = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u00ad\U000e0041"
    bundle = make_bundle("web", "Failed", message=f"exe.{marks}gnp")
    hub.post(make_report("edge-1", 1, [bundle], labels={"note": marks}), hub.token("edge-1"))
    for path in ("/", "/clusters/edge-1", "/bundles/web"):
        page = hub.read(path).text
        assert not any(mark in page for mark in marks), path


def test_bundle_names_with_slashes_have_reachable_pages(hub: HubUnderTest) -> None:
    names = ["team/web", "a/b/c", "x%2Fy", "café ☕", "q?x=1#f"]
    hub.post(make_report("edge-1", 1, [make_bundle(n) for n in names]), hub.token("edge-1"))
    cluster_page = hub.read("/clusters/edge-1").text
    for name in names:
        from urllib.parse import quote

        href = "/bundles/" + quote(name, safe="")
        assert f'href="{href}"' in cluster_page
        page = hub.client.get(href, headers={"Authorization": f"Bearer {hub.viewer_token}"})
        assert page.status_code == 200, name
        api = hub.client.get(
            "/api/v1/bundles/" + quote(name, safe=""), headers={"Authorization": f"Bearer {hub.viewer_token}"}
        )
        assert api.json()["name"] == name
