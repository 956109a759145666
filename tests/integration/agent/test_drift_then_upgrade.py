"""After a drift correction the next Git change to the same object still upgrades (issue 10, item 1):
the agent corrects as Helm's own field manager, so Helm's server-side upgrade finds no foreign owner.
And a correction never fights an autoscaler for the replicas it owns."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get

pytestmark = pytest.mark.cluster


def files(name: str, ns: str, **values: Any) -> dict[str, str]:
    return {
        f"clusters/{name}.yaml": cluster_file(name, {}),
        "bundles/web/bundle.yaml": bundle_file("web", ns, targets=[{"clusterName": name}], values=values),
    }


def seeded(cluster, fleet_repo_factory, harness_factory, unique: str, **values: Any):
    """A repo with one bundle ``web`` with ``values`` and an agent that has installed it."""
    repo = fleet_repo_factory(files(unique, unique, **values))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    return repo, agent


def managers_of(obj: dict[str, Any]) -> set[str]:
    return {entry["manager"] for entry in obj["metadata"].get("managedFields", [])}


def patch(cluster, path: str, body: dict[str, Any]) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (loopback)
        cluster.server + path,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/merge-patch+json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=cluster.ssl_context()):  # noqa: S310
        pass


def scale(cluster, ns: str, name: str, replicas: int) -> None:
    patch(
        cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale", {"spec": {"replicas": replicas}}
    )


def upgrade_to(agent, repo, name: str, ns: str, **values: Any):
    repo.write({"bundles/web/bundle.yaml": files(name, ns, **values)["bundles/web/bundle.yaml"]}, "change")
    outcome, _ = agent.run_pass()
    web = by_bundle(outcome)["web"]
    assert web.action == "upgrade"
    assert web.state == "Ready", web
    return web


def test_a_configmap_value_patched_by_hand_is_corrected_and_the_next_upgrade_of_it_succeeds(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo, agent = seeded(cluster, fleet_repo_factory, harness_factory, unique, region="v1")
    path = f"/api/v1/namespaces/{unique}/configmaps/web-config"
    patch(cluster, path, {"data": {"region": "by-hand"}})

    corrected, _ = agent.run_pass()
    assert "corrected" in by_bundle(corrected)["web"].message
    live = get(cluster, path)
    assert live["data"]["region"] == "v1"
    assert "flotilla" not in managers_of(live)  # the fields stayed Helm's

    web = upgrade_to(agent, repo, unique, unique, region="v2")
    assert get(cluster, path)["data"]["region"] == "v2"
    assert web.helm_revision == 2  # upgraded once, no failed attempt and no rollback


def test_a_deployment_scaled_by_hand_is_corrected_and_the_next_replicas_change_upgrades(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo, agent = seeded(cluster, fleet_repo_factory, harness_factory, unique, replicas=2)
    scale(cluster, unique, "web", 5)

    corrected, _ = agent.run_pass()
    assert by_bundle(corrected)["web"].state == "Modified"
    path = f"/apis/apps/v1/namespaces/{unique}/deployments/web"
    assert get(cluster, path)["spec"]["replicas"] == 2

    upgrade_to(agent, repo, unique, unique, replicas=3)
    assert get(cluster, path)["spec"]["replicas"] == 3


def test_a_deleted_object_is_recreated_and_the_next_upgrade_of_it_succeeds(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo, agent = seeded(cluster, fleet_repo_factory, harness_factory, unique, region="v1")
    path = f"/api/v1/namespaces/{unique}/configmaps/web-config"
    cluster.api(path, method="DELETE")

    recreated, _ = agent.run_pass()
    assert by_bundle(recreated)["web"].modified[0].message.endswith("missing")
    live = get(cluster, path)
    assert live["data"]["region"] == "v1"
    # Helm's ownership metadata is back too: helm still recognises the object as its own.
    assert live["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert live["metadata"]["annotations"]["meta.helm.sh/release-name"] == "web"

    upgrade_to(agent, repo, unique, unique, region="v2")
    assert get(cluster, path)["data"]["region"] == "v2"


def test_a_correction_keeps_the_replicas_an_hpa_set_and_an_hpa_without_metrics_is_not_ready(
    cluster, fleet_repo_factory, harness_factory, unique
):
    # The chart sets replicas: 1 and an HPA with a floor of 3; the HPA controller scales to 3 even
    # without metrics (below minReplicas), and reports ScalingActive=False (no metrics server here).
    repo = fleet_repo_factory(files(unique, unique, replicas=1, hpa={"minReplicas": 3, "maxReplicas": 4}))
    agent = harness_factory(cluster, unique, repo.url)
    path = f"/apis/apps/v1/namespaces/{unique}/deployments/web"
    deadline = time.monotonic() + 90
    while True:
        outcome, _ = agent.run_pass()
        if (get(cluster, path) or {}).get("spec", {}).get("replicas") == 3:
            break
        assert time.monotonic() < deadline, "the HPA never scaled the Deployment to its minimum"
        time.sleep(2)
    web = by_bundle(outcome)["web"]
    assert web.state != "Ready"
    hpa = [r for r in web.non_ready if r.kind == "HorizontalPodAutoscaler"]
    assert hpa, web
    assert hpa[0].status == "InProgress"
    assert "scaling not active" in hpa[0].message or "not yet assessed" in hpa[0].message

    # A hand edit of another field is corrected without taking the replicas back from the HPA.
    patch(
        cluster,
        path,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "web", "image": "registry.example.com/x:9"}]}}
            }
        },
    )
    for _ in range(2):
        outcome, _ = agent.run_pass()
        live = get(cluster, path)
        assert live["spec"]["replicas"] == 3, "the correction fought the HPA for spec.replicas"
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/app/web:1.0"
    assert not any("spec.replicas" in m.message for m in by_bundle(outcome)["web"].modified)


def test_a_chart_handing_replicas_to_its_hpa_upgrades_without_a_conflict(
    cluster, fleet_repo_factory, harness_factory, unique
):
    hpa = {"minReplicas": 2, "maxReplicas": 4, "ownsReplicas": True}
    repo = fleet_repo_factory(files(unique, unique, hpa=hpa))
    agent = harness_factory(cluster, unique, repo.url)
    agent.run_pass()
    path = f"/apis/apps/v1/namespaces/{unique}/deployments/web"
    deadline = time.monotonic() + 90
    while (get(cluster, path) or {}).get("spec", {}).get("replicas") != 2:
        assert time.monotonic() < deadline, "the HPA never scaled the Deployment"
        time.sleep(1)
    changed = files(unique, unique, region="v2", hpa=hpa)["bundles/web/bundle.yaml"]
    repo.write({"bundles/web/bundle.yaml": changed}, "region v2")
    outcome, _ = agent.run_pass()
    web = by_bundle(outcome)["web"]
    assert web.action == "upgrade"
    assert "conflict" not in web.message
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "v2"
    assert get(cluster, path)["spec"]["replicas"] == 2
