"""The agent installs exactly what the plan gives its cluster, upgrades on a pushed commit, does no
work (no helm call, no API write) when nothing changed, and prunes what is no longer targeted."""

from __future__ import annotations

import pytest

from tests.integration.agent.harness import (
    bundle_file,
    by_bundle,
    cluster_file,
    flotilla_releases,
    get,
)

pytestmark = pytest.mark.cluster


def test_fresh_cluster_gets_exactly_its_planned_releases_with_its_own_values(
    cluster, fleet_repo_factory, harness_factory, unique
):
    me, other = f"{unique}-eu", f"{unique}-us"
    ns = unique
    repo = fleet_repo_factory(
        {
            f"clusters/{me}.yaml": cluster_file(me, {"region": "eu"}),
            f"clusters/{other}.yaml": cluster_file(other, {"region": "us"}),
            "bundles/web/bundle.yaml": bundle_file(
                "web",
                ns,
                values={"region": "default"},
                targets=[
                    {"clusterSelector": {"matchLabels": {"region": "eu"}}, "values": {"region": "eu"}},
                    {"clusterSelector": {"matchLabels": {"region": "us"}}, "values": {"region": "us"}},
                ],
            ),
            "bundles/us-only/bundle.yaml": bundle_file("us-only", ns, targets=[{"clusterName": other}]),
        }
    )
    agent = harness_factory(cluster, me, repo.url)

    outcome, report = agent.run_pass()

    assert outcome.ok, outcome
    assert flotilla_releases(cluster, me) == {(ns, "web")}
    configmap = get(cluster, f"/api/v1/namespaces/{ns}/configmaps/web-config")
    assert configmap is not None
    assert configmap["data"]["region"] == "eu"
    deployment = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "REGION", "value": "eu"} in env
    assert report.health == "Ready"
    assert [(b.bundle, b.state) for b in report.bundles] == [("web", "Ready")]
    assert report.bundles[0].applied_commit == report.source.desired_commit


def test_pushed_value_change_upgrades_and_an_unchanged_repo_costs_no_helm_call_and_no_write(
    cluster, fleet_repo_factory, harness_factory, unique
):
    ns = unique
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file(
                "web", ns, values={"region": "v1"}, targets=[{"clusterName": unique}]
            ),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)
    first, _ = agent.run_pass()
    assert first.ok

    writes_before = len(cluster.agent_writes())
    unchanged, _ = agent.run_pass()
    assert unchanged.ok
    assert unchanged.helm_calls == ()
    assert len(cluster.agent_writes()) == writes_before, "a pass with nothing changed wrote to the API server"

    repo.write(
        {
            "bundles/web/bundle.yaml": bundle_file(
                "web", ns, values={"region": "v2"}, targets=[{"clusterName": unique}]
            )
        },
        "web: region v2",
    )
    upgraded, report = agent.run_pass()

    assert upgraded.ok
    assert by_bundle(upgraded)["web"].action == "upgrade"
    assert by_bundle(upgraded)["web"].helm_revision == 2
    assert get(cluster, f"/api/v1/namespaces/{ns}/configmaps/web-config")["data"]["region"] == "v2"
    assert report.bundles[0].applied_commit == repo.clone.head()


def test_cluster_taken_out_of_a_bundles_targets_has_that_release_uninstalled(
    cluster, fleet_repo_factory, harness_factory, unique
):
    ns = unique
    files = {
        f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"}),
        "bundles/keep/bundle.yaml": bundle_file("keep", ns, targets=[{"clusterName": unique}]),
        "bundles/drop/bundle.yaml": bundle_file(
            "drop", ns, targets=[{"clusterSelector": {"matchLabels": {"tier": "store"}}}]
        ),
    }
    repo = fleet_repo_factory(files)
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    assert flotilla_releases(cluster, unique) == {(ns, "keep"), (ns, "drop")}

    repo.write(
        {f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "factory"})}, "relabel: no longer a store"
    )
    outcome, _ = agent.run_pass()

    assert outcome.pruned == (f"{ns}/drop",)
    assert flotilla_releases(cluster, unique) == {(ns, "keep")}
    assert get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/drop") is None
    assert get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/keep") is not None
