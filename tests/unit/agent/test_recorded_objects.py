"""Drift and health over objects recorded from a real kube-apiserver right after ``helm install``.

``data/helm_installed_objects.json`` holds pairs of (the release manifest's object, the live object
the API server returned for it) for tests/charts/smoke and fleet-repo-example/charts/edge-service,
installed on the local control plane of tests/localcluster.py.  The live objects carry everything a
real server adds (defaults, managedFields, status, helm's annotations), so these tests catch false
drift that hand-written objects would miss.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agent import drift, health

PAIRS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "helm_installed_objects.json").read_text()
)


def _id(pair: dict[str, Any]) -> str:
    return f"{pair['desired']['kind']} {pair['desired']['metadata']['name']}"


@pytest.mark.parametrize("pair", PAIRS, ids=_id)
def test_a_freshly_installed_object_has_no_drift_and_is_ready(pair: dict[str, Any]) -> None:
    assert drift.compare(pair["desired"], pair["live"]) is None
    assert health.assess(pair["live"]).status == "Ready"


def _pair(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(p for p in PAIRS if p["desired"]["kind"] == kind))


def test_scaling_a_recorded_deployment_by_hand_is_drift() -> None:
    pair = _pair("Deployment")
    wanted = pair["desired"]["spec"]["replicas"]
    pair["live"]["spec"]["replicas"] = wanted + 3
    found = drift.compare(pair["desired"], pair["live"])
    assert found is not None
    assert found.message.endswith(f"spec.replicas is {wanted + 3}, release says {wanted}")
    assert drift.compare(pair["desired"], pair["live"], ignore_replicas=True) is None


def test_editing_a_recorded_configmap_by_hand_is_drift() -> None:
    pair = _pair("ConfigMap")
    key = next(iter(pair["desired"]["data"]))
    pair["live"]["data"][key] = "edited"
    found = drift.compare(pair["desired"], pair["live"])
    assert found is not None
    assert [d.path for d in found.differences] == [f"data.{key}"]
