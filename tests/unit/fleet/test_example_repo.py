"""fleet-repo-example is valid, plans for every cluster, and shows what the issue asks of it."""

from __future__ import annotations

import pathlib
import re

import pytest

from agent import fleet

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "fleet-repo-example"
ALLOWED_KINDS = {"ConfigMap", "Deployment", "Service", "ServiceAccount", "Job"}


@pytest.fixture(scope="module")
def repo() -> fleet.FleetRepo:
    return fleet.load_repo(EXAMPLE)


@pytest.fixture(scope="module")
def plans(repo: fleet.FleetRepo) -> dict[str, fleet.ClusterPlan]:
    return {name: fleet.plan_cluster(repo, name) for name in repo.clusters}


def test_validates_without_problems() -> None:
    assert fleet.validate_repo(EXAMPLE) == []


def test_fleet_shape(repo: fleet.FleetRepo) -> None:
    labels = [cluster.labels for cluster in repo.clusters.values()]
    assert len(repo.clusters) >= 8
    assert len({label["region"] for label in labels}) >= 3
    assert {label["arch"] for label in labels} == {"amd64", "arm64"}
    assert len(repo.groups) >= 3
    assert len(repo.bundles) >= 5


def test_the_first_three_clusters_span_two_regions(repo: fleet.FleetRepo) -> None:
    first_three = sorted(repo.clusters)[:3]
    assert len({repo.clusters[name].labels["region"] for name in first_three}) >= 2


def test_every_cluster_gets_a_plan_in_dependency_order(plans: dict[str, fleet.ClusterPlan]) -> None:
    for plan in plans.values():
        assert plan.releases
        seen: set[str] = set()
        for release in plan.releases:
            assert set(release.depends_on) <= seen, (plan.cluster.name, release.bundle)
            seen.add(release.bundle)


def test_a_bundle_only_for_arm64(repo: fleet.FleetRepo, plans: dict[str, fleet.ClusterPlan]) -> None:
    def has_arm_only_bundle(bundle: str) -> bool:
        with_it = {name for name, plan in plans.items() if any(r.bundle == bundle for r in plan.releases)}
        arm = {name for name, cluster in repo.clusters.items() if cluster.labels["arch"] == "arm64"}
        return bool(with_it) and with_it == arm

    assert any(has_arm_only_bundle(bundle) for bundle in repo.bundles)


def test_a_bundle_whose_values_differ_per_region(
    repo: fleet.FleetRepo, plans: dict[str, fleet.ClusterPlan]
) -> None:
    by_region: dict[str, set[str]] = {}
    for name, plan in plans.items():
        for release in plan.releases:
            if release.bundle == "telemetry-gateway":
                region = repo.clusters[name].labels["region"]
                by_region.setdefault(region, set()).add(str(release.values["region"]))
                assert release.values["region"] == region
    assert len(by_region) >= 3


def test_paused_depends_on_values_from_and_local_chart_are_all_used(repo: fleet.FleetRepo) -> None:
    bundles = repo.bundles.values()
    assert any(bundle.paused for bundle in bundles)
    assert any(bundle.depends_on for bundle in bundles)
    assert any(ref.kind == "Secret" for bundle in bundles for ref in bundle.values_from)
    assert any(bundle.chart.kind == "path" for bundle in bundles)


def test_charts_only_create_objects_a_fake_node_cluster_can_run() -> None:
    for template in (EXAMPLE / "charts").rglob("templates/*.yaml"):
        text = template.read_text()
        assert set(re.findall(r"^kind:\s*(\w+)", text, re.MULTILINE)) <= ALLOWED_KINDS, template
        assert "helm.sh/hook" not in text, template
        assert "LoadBalancer" not in text, template
        assert "NodePort" not in text, template
