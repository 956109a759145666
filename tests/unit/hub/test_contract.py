"""The wire contract: round trips, the previous version, and field-naming rejections."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.contract import (
    BUNDLE_STATES,
    CURRENT_VERSION,
    MAX_MESSAGE,
    ContractError,
    cluster_health,
    parse_report,
    to_v1_dict,
    worst_state,
)
from tests.unit.hub.factory import make_bundle, make_report


def test_round_trip_through_json_is_lossless() -> None:
    report = make_report(bundles=[make_bundle("a", "Failed", message="boom"), make_bundle("b")])
    assert parse_report(report.to_json().encode()) == report


def test_previous_version_is_accepted_and_upgraded() -> None:
    report = make_report(source_error="render failed")
    v1 = to_v1_dict(report)
    assert "errors" not in v1["source"]
    parsed = parse_report(json.dumps(v1))
    assert parsed.version == CURRENT_VERSION
    assert parsed.source.errors == []
    assert parsed.source.error == "render failed"
    assert parsed.bundles[0].non_ready == []


def test_agent_arch_is_optional_carried_and_bounded() -> None:
    """An older agent sends no ``agent_arch`` (it reads as ""); a newer one's survives the round trip;
    an oversized or non-string one is rejected by name."""
    data = make_report().to_json_dict()
    del data["agent_arch"]
    assert parse_report(data).agent_arch == ""
    data["agent_arch"] = "aarch64"
    assert parse_report(json.dumps(data)).agent_arch == "aarch64"
    for bad in ("x" * 1000, 64, ["arm"]):
        data["agent_arch"] = bad
        with pytest.raises(ContractError) as err:
            parse_report(data)
        assert err.value.field_path == "agent_arch"


def test_unknown_version_is_rejected_naming_the_field() -> None:
    data = make_report().to_json_dict()
    data["version"] = 3
    with pytest.raises(ContractError) as err:
        parse_report(data)
    assert err.value.field_path == "version"


def _with(path: list[Any], value: Any) -> dict[str, Any]:
    data = make_report(bundles=[make_bundle(f"b{i}") for i in range(4)]).to_json_dict()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field_path"),
    [
        (["bundles", 3, "state"], "Happy", "bundles[3].state"),
        (["sequence"], -1, "sequence"),
        (["sequence"], "7", "sequence"),
        (["interval_seconds"], 0, "interval_seconds"),
        (["cluster"], "Not A Name", "cluster"),
        (["generated_at"], "yesterday", "generated_at"),
        (["labels"], {"region": 5}, "labels.region"),
        (["source", "url"], None, "source.url"),
        (["bundles", 0, "message"], "x" * (MAX_MESSAGE + 1), "bundles[0].message"),
        (
            ["bundles", 1, "non_ready"],
            [{"kind": "Pod", "name": "p", "status": "x"}] * 11,
            "bundles[1].non_ready",
        ),
        (["bundles", 2, "helm_revision"], True, "bundles[2].helm_revision"),
    ],
)
def test_bad_field_is_named(path: list[Any], value: Any, field_path: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_report(_with(path, value))
    assert err.value.field_path == field_path
    assert str(err.value).startswith(field_path + ": ")


def test_missing_field_is_named() -> None:
    data = make_report().to_json_dict()
    del data["bundles"][0]["bundle"]
    with pytest.raises(ContractError, match=r"^bundles\[0\]\.bundle: is required"):
        parse_report(data)


def test_invalid_json_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="not valid JSON"):
        parse_report(b"{nope")
    with pytest.raises(ContractError, match="report: must be an object"):
        parse_report(b"[]")


def test_health_is_the_worst_bundle_state() -> None:
    assert worst_state(["Ready", "Paused", "Degraded", "InProgress"]) == "Degraded"
    assert worst_state([]) == "Ready"
    assert cluster_health([], "git clone failed") == "Failed"
    assert cluster_health([], None) == "Ready"
    assert cluster_health(["Ready", "Paused"], None) == "Ready", "pausing a bundle is not a health problem"
    assert cluster_health(["Paused", "Paused"], None) == "Paused"
    assert make_report(bundles=[make_bundle("a", "Modified"), make_bundle("b")]).health == "Modified"


@given(st.lists(st.sampled_from(BUNDLE_STATES), min_size=1))
def test_worst_state_is_never_better_than_any_input(states: list[str]) -> None:
    worst = worst_state(states)
    assert all(BUNDLE_STATES.index(worst) <= BUNDLE_STATES.index(s) for s in states)
    assert worst in states


def test_to_json_dict_matches_dataclasses_asdict() -> None:
    from dataclasses import asdict

    from hub.contract import ResourceStatus

    bundle = make_bundle("a", "Degraded", non_ready=[ResourceStatus("Pod", "apps", "p", "CrashLoop", "oom")])
    report = make_report(bundles=[bundle], source_error="boom")
    assert report.to_json_dict() == asdict(report)
