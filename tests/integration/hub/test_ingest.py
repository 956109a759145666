"""POST /api/v1/reports against a real hub: every rejection stores nothing; sequences are safe."""

from __future__ import annotations

import json

import httpx

from hub.contract import to_v1_dict
from tests.integration.hub.conftest import BOTH_BACKENDS, HubUnderTest
from tests.integration.hub.hubserver import InProcessHub, create_token, post_report, stored_report_count
from tests.unit.hub.factory import make_bundle, make_report


def _nothing_stored(hub: HubUnderTest) -> None:
    assert stored_report_count(hub.database) == 0
    listing = hub.read("/api/v1/clusters").json()
    assert (listing["total"], listing["clusters"]) == (0, [])


@BOTH_BACKENDS
def test_accepted_report_is_stored_and_visible(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    response = hub.post(make_report("edge-1", 1), token)
    assert response.status_code == 202
    assert response.json() == {"result": "current", "cluster": "edge-1", "sequence": 1}
    [cluster] = hub.read("/api/v1/clusters").json()["clusters"]
    assert (cluster["name"], cluster["health"], cluster["connectivity"]) == ("edge-1", "Ready", "Online")
    assert cluster["commit"] == "a1b2c3d"
    assert stored_report_count(hub.database) == 1


def test_missing_token_is_401(hub: HubUnderTest) -> None:
    response = hub.client.post("/api/v1/reports", content=make_report().to_json())
    assert response.status_code == 401
    _nothing_stored(hub)


def test_wrong_token_is_401(hub: HubUnderTest) -> None:
    real = hub.token("edge-1")
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    assert hub.post(make_report("edge-1"), forged).status_code == 401
    assert hub.post(make_report("edge-1"), "not-a-token").status_code == 401
    _nothing_stored(hub)


def test_viewer_token_cannot_write(hub: HubUnderTest) -> None:
    assert hub.post(make_report("edge-1"), hub.viewer_token).status_code == 401
    _nothing_stored(hub)


@BOTH_BACKENDS
def test_revoked_token_is_401(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    conn = hub.database.connect()
    assert conn.revoke_tokens("cluster", "edge-1") == 1
    conn.close()
    assert hub.post(make_report("edge-1"), token).status_code == 401
    _nothing_stored(hub)


def test_report_for_another_cluster_is_403(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    response = hub.post(make_report("edge-2"), token)
    assert response.status_code == 403
    assert response.json()["field"] == "cluster"
    _nothing_stored(hub)


def test_body_over_the_limit_is_413(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    huge = make_report("edge-1").to_json().encode() + b" " * (1024 * 1024)
    assert hub.post(huge, token).status_code == 413
    _nothing_stored(hub)


def test_streamed_body_over_the_limit_is_413_without_content_length(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")

    def chunks() -> object:
        yield make_report("edge-1").to_json().encode()
        for _ in range(20):
            yield b" " * 65536

    response = hub.client.post(
        "/api/v1/reports",
        content=chunks(),
        headers={"Authorization": f"Bearer {token}"},  # type: ignore[arg-type]
    )
    assert response.status_code == 413
    _nothing_stored(hub)


def test_malformed_json_is_422(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    response = hub.post(b'{"version": 2, "cluster": ', token)
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["error"]
    _nothing_stored(hub)


def test_wrong_schema_is_422_naming_the_field(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    data = make_report("edge-1", bundles=[make_bundle(f"b{i}") for i in range(4)]).to_json_dict()
    data["bundles"][3]["state"] = "Sunny"
    response = hub.post(json.dumps(data).encode(), token)
    assert response.status_code == 422
    assert response.json()["field"] == "bundles[3].state"
    assert response.json()["error"].startswith("bundles[3].state: must be one of Failed, Degraded")
    _nothing_stored(hub)


def test_unknown_version_is_422(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    data = make_report("edge-1").to_json_dict()
    data["version"] = 99
    response = hub.post(json.dumps(data).encode(), token)
    assert response.status_code == 422
    assert response.json()["field"] == "version"
    _nothing_stored(hub)


def test_previous_contract_version_is_accepted(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    v1 = to_v1_dict(make_report("edge-1", 4, [make_bundle("web", "Degraded")]))
    assert hub.post(json.dumps(v1).encode(), token).status_code == 202
    detail = hub.read("/api/v1/clusters/edge-1").json()
    assert detail["health"] == "Degraded"
    assert detail["report"]["version"] == 2


@BOTH_BACKENDS
def test_older_sequence_never_overwrites_but_is_kept_and_retries_are_idempotent(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    assert (
        hub.post(make_report("edge-1", 5, [make_bundle("web", "Ready")]), token).json()["result"] == "current"
    )
    late = hub.post(make_report("edge-1", 3, [make_bundle("web", "Failed")]), token)
    assert (late.status_code, late.json()["result"]) == (202, "late")
    again = hub.post(make_report("edge-1", 5, [make_bundle("web", "Failed")]), token)
    assert (again.status_code, again.json()["result"]) == (200, "duplicate")

    detail = hub.read("/api/v1/clusters/edge-1").json()
    assert (detail["health"], detail["sequence"]) == ("Ready", 5)
    assert [h["sequence"] for h in detail["history"]] == [5, 3]
    assert stored_report_count(hub.database) == 2


@BOTH_BACKENDS
def test_state_survives_a_restart(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    hub.post(make_report("edge-1", 7, [make_bundle("web", "Modified")], labels={"region": "eu"}), token)
    hub.server.stop()
    restarted = InProcessHub(hub.database).start()
    try:
        response = httpx.get(
            restarted.url + "/api/v1/clusters", headers={"Authorization": f"Bearer {hub.viewer_token}"}
        )
        [cluster] = response.json()["clusters"]
        assert (cluster["name"], cluster["health"], cluster["labels"]) == (
            "edge-1",
            "Modified",
            {"region": "eu"},
        )
        late = post_report(restarted.url, make_report("edge-1", 6), create_token(hub.database, "edge-1"))
        assert late.json()["result"] == "late"
    finally:
        restarted.stop()


def test_metrics_count_accepted_and_rejected_by_reason(hub: HubUnderTest) -> None:
    token = hub.token("edge-1")
    hub.post(make_report("edge-1", 1), token)
    hub.post(make_report("edge-1", 1), token)
    hub.post(make_report("edge-2", 1), token)
    hub.post(b"{", token)
    text = hub.read("/metrics").text
    assert 'flotilla_hub_reports_accepted_total{outcome="current"} 1' in text
    assert 'flotilla_hub_reports_accepted_total{outcome="duplicate"} 1' in text
    assert 'flotilla_hub_reports_rejected_total{reason="forbidden"} 1' in text
    assert 'flotilla_hub_reports_rejected_total{reason="invalid"} 1' in text
    assert 'flotilla_hub_clusters_by_health{health="Ready"} 1' in text
    assert 'flotilla_hub_clusters_by_connectivity{connectivity="Online"} 1' in text
    assert "flotilla_hub_ingest_duration_seconds_count 4" in text


@BOTH_BACKENDS
def test_revoking_a_token_in_use_takes_effect_within_seconds(hub: HubUnderTest) -> None:
    import time

    token = hub.token("edge-1")
    assert hub.post(make_report("edge-1", 1), token).status_code == 202
    conn = hub.database.connect()
    conn.revoke_tokens("cluster", "edge-1")
    conn.close()
    deadline = time.monotonic() + 5
    while hub.post(make_report("edge-1", 2), token).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token is still accepted"
        time.sleep(0.2)


@BOTH_BACKENDS
def test_history_per_cluster_stays_bounded(hub: HubUnderTest) -> None:
    from hub.reportstore import Retention
    from hub.writer import PRUNE_EVERY

    HISTORY_PER_CLUSTER = Retention().reports

    token = hub.token("edge-1")
    for sequence in range(1, HISTORY_PER_CLUSTER + 3 * PRUNE_EVERY + 1):
        assert hub.post(make_report("edge-1", sequence), token).status_code == 202
    stored = stored_report_count(hub.database)
    assert HISTORY_PER_CLUSTER <= stored < HISTORY_PER_CLUSTER + PRUNE_EVERY
    history = hub.read("/api/v1/clusters/edge-1").json()["history"]
    assert history[0]["sequence"] == HISTORY_PER_CLUSTER + 3 * PRUNE_EVERY  # the newest are the ones kept
