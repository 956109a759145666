"""Drift is detected and corrected (or only reported when a bundle turns correction off); dependsOn
and paused behave as documented; a crash mid-upgrade is recovered on the next pass."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get
from tests.localcluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster


def single_bundle(name: str, ns: str, **spec: object) -> dict[str, str]:
    return {
        f"clusters/{name}.yaml": cluster_file(name, {}),
        "bundles/web/bundle.yaml": bundle_file("web", ns, targets=[{"clusterName": name}], **spec),
    }


def scale(cluster, ns: str, name: str, replicas: int) -> None:
    cluster.api(
        f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
        method="PUT",
        body={
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas},
        },
    )


def test_deployment_scaled_by_hand_is_reported_modified_then_corrected(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(single_bundle(unique, unique, values={"replicas": 2}))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    scale(cluster, unique, "web", 5)

    outcome, report = agent.run_pass()

    web = by_bundle(outcome)["web"]
    assert web.state == "Modified"
    assert any("spec.replicas" in m.message and "5" in m.message for m in report.bundles[0].modified)
    assert "corrected" in web.message
    assert get(cluster, f"/apis/apps/v1/namespaces/{unique}/deployments/web")["spec"]["replicas"] == 2
    deadline = time.monotonic() + 60
    while True:
        outcome, _ = agent.run_pass()
        if by_bundle(outcome)["web"].state == "Ready":
            break
        assert time.monotonic() < deadline, by_bundle(outcome)["web"]
        time.sleep(1)


def test_deleted_configmap_is_recreated(cluster, fleet_repo_factory, harness_factory, unique):
    repo = fleet_repo_factory(single_bundle(unique, unique, values={"region": "eu"}))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    cluster.api(f"/api/v1/namespaces/{unique}/configmaps/web-config", method="DELETE")

    outcome, _ = agent.run_pass()

    assert by_bundle(outcome)["web"].state == "Modified"
    assert "missing" in by_bundle(outcome)["web"].modified[0].message
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "eu"


def test_drift_is_only_reported_when_the_bundle_turns_correction_off(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(single_bundle(unique, unique, values={"replicas": 1}, correctDrift=False))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    scale(cluster, unique, "web", 3)

    for _ in range(2):
        outcome, _ = agent.run_pass()
        assert by_bundle(outcome)["web"].state == "Modified"
    assert get(cluster, f"/apis/apps/v1/namespaces/{unique}/deployments/web")["spec"]["replicas"] == 3


def test_depends_on_waits_for_the_dependency_and_paused_leaves_the_release_alone(
    cluster, fleet_repo_factory, harness_factory, unique
):
    ns = unique
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/base/bundle.yaml": bundle_file(
                "base",
                ns,
                targets=[{"clusterName": unique}],
                values={"podLabels": {NEVER_READY_LABEL: "true"}},
                helm={"timeoutSeconds": 10},
            ),
            "bundles/app/bundle.yaml": bundle_file(
                "app", ns, targets=[{"clusterName": unique}], dependsOn=["base"]
            ),
            "bundles/frozen/bundle.yaml": bundle_file("frozen", ns, targets=[{"clusterName": unique}]),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)

    outcome, _ = agent.run_pass()
    states = {r.bundle: r for r in outcome.releases}
    assert states["base"].state in ("Failed", "Degraded")
    assert states["app"].state == "Pending"
    assert "base" in states["app"].message
    assert get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/app") is None
    assert states["frozen"].state == "Ready"

    repo.write(
        {
            "bundles/base/bundle.yaml": bundle_file("base", ns, targets=[{"clusterName": unique}]),
            "bundles/frozen/bundle.yaml": bundle_file(
                "frozen", ns, targets=[{"clusterName": unique}], paused=True, values={"region": "changed"}
            ),
        },
        "base fixed; frozen paused with a change",
    )
    outcome, _ = agent.run_pass()
    states = {r.bundle: r for r in outcome.releases}
    assert states["base"].state == "Ready"
    assert states["app"].state == "Ready"
    assert states["frozen"].state == "Paused"
    assert get(cluster, f"/api/v1/namespaces/{ns}/configmaps/frozen-config")["data"]["region"] == "none"


def test_agent_killed_during_an_upgrade_recovers_the_release_on_the_next_pass(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(single_bundle(unique, unique, values={"region": "v1"}))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    agent.restart()
    # v2 never becomes ready, so helm is still waiting when the agent process is killed.
    repo.write(
        {
            "bundles/web/bundle.yaml": bundle_file(
                "web",
                unique,
                targets=[{"clusterName": unique}],
                helm={"timeoutSeconds": 120},
                values={
                    "region": "v2",
                    "podLabels": {NEVER_READY_LABEL: "true"},
                },
            )
        },
        "v2",
    )
    process = subprocess.Popen(
        agent.command("once"),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        secrets = cluster.api(
            f"/api/v1/namespaces/{unique}/secrets?labelSelector=owner%3Dhelm,status%3Dpending-upgrade"
        )
        if secrets["items"]:
            break
        assert time.monotonic() < deadline, "the upgrade never started"
        time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)  # the agent and its helm child die mid-upgrade
    process.wait()

    # The fix is pushed; the next pass must first get the release out of pending-upgrade.
    repo.write(
        {
            "bundles/web/bundle.yaml": bundle_file(
                "web", unique, targets=[{"clusterName": unique}], values={"region": "v3"}
            )
        },
        "v3",
    )
    outcome, _ = agent.run_pass()

    web = by_bundle(outcome)["web"]
    assert web.state == "Ready", web
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "v3"
