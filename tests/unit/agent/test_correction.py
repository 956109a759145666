"""Drift is undone with exactly Helm's applied configuration, and replicas an autoscaler owns are kept."""

from __future__ import annotations

import copy
from typing import Any

from agent.correction import correction_body, hpa_targets, replicas_owned_by_autoscaler

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a"}]}}},
}


def live(replicas: int, managers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    obj = copy.deepcopy(DEPLOYMENT)
    obj["spec"]["replicas"] = replicas
    obj["metadata"]["managedFields"] = managers or []
    return obj


def test_the_body_is_the_manifest_plus_the_ownership_metadata_helm_adds_and_the_input_is_untouched() -> None:
    before = copy.deepcopy(DEPLOYMENT)
    body = correction_body(
        DEPLOYMENT, live(5), release="web", release_namespace="shop", keep_live_replicas=False
    )
    assert before == DEPLOYMENT
    assert body["metadata"]["labels"] == {"app": "web", "app.kubernetes.io/managed-by": "Helm"}
    assert body["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "web",
        "meta.helm.sh/release-namespace": "shop",
    }
    assert body["spec"] == DEPLOYMENT["spec"]  # replicas back to the release's 2


def test_replicas_an_autoscaler_owns_keep_their_live_value_and_other_fields_are_still_corrected() -> None:
    body = correction_body(
        DEPLOYMENT, live(7), release="web", release_namespace="shop", keep_live_replicas=True
    )
    assert body["spec"]["replicas"] == 7
    assert body["spec"]["template"] == DEPLOYMENT["spec"]["template"]


def test_a_deleted_object_is_recreated_with_the_release_replicas_even_under_an_autoscaler() -> None:
    body = correction_body(DEPLOYMENT, None, release="web", release_namespace="shop", keep_live_replicas=True)
    assert body["spec"]["replicas"] == 2


def test_replicas_written_by_the_hpa_controller_are_its_own_but_a_hand_scale_is_not() -> None:
    hpa = {"manager": "kube-controller-manager", "operation": "Update", "subresource": "scale",
           "fieldsV1": {"f:spec": {"f:replicas": {}}}}  # fmt: skip
    by_hand = {"manager": "kubectl", "operation": "Update", "subresource": "scale",
               "fieldsV1": {"f:spec": {"f:replicas": {}}}}  # fmt: skip
    status_only = {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                   "fieldsV1": {"f:status": {"f:replicas": {}}}}  # fmt: skip
    assert replicas_owned_by_autoscaler(live(3, [hpa]))
    assert not replicas_owned_by_autoscaler(live(3, [by_hand]))
    assert not replicas_owned_by_autoscaler(live(3, [status_only]))
    assert not replicas_owned_by_autoscaler(None)
    assert not replicas_owned_by_autoscaler({"metadata": {"managedFields": "garbage"}})


def test_hpa_targets_names_what_each_hpa_scales() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}},
    }
    assert hpa_targets([DEPLOYMENT, hpa]) == {("Deployment", "web")}
