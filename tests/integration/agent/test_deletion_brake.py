"""The deletion brake on a real cluster: a commit that retargets a cluster away from all its bundles
uninstalls nothing until the exact prune is confirmed in fleet.yaml; then the next commit prunes."""

from __future__ import annotations

import pytest
import yaml

from tests.integration.agent.harness import API_VERSION, bundle_file, cluster_file, flotilla_releases

pytestmark = pytest.mark.cluster


def store_with_three_bundles(unique: str, **extra: str) -> dict[str, str]:
    """A store cluster and bundles a, b and c that target stores, plus ``extra`` files."""
    stores = [{"clusterSelector": {"matchLabels": {"tier": "store"}}}]
    return {
        f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"}),
        **{
            f"bundles/{name}/bundle.yaml": bundle_file(name, unique, targets=stores)
            for name in ("a", "b", "c")
        },
        **extra,
    }


def test_retargeting_a_cluster_away_from_every_bundle_prunes_nothing_until_confirmed(
    cluster, fleet_repo_factory, harness_factory, unique
):
    ns = unique
    repo = fleet_repo_factory(store_with_three_bundles(unique))
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    everything = {(ns, "a"), (ns, "b"), (ns, "c")}
    assert flotilla_releases(cluster, unique) == everything

    repo.write({f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "retired"})}, "retire the store")
    outcome, report = agent.run_pass()

    assert outcome.pruned == ()
    assert flotilla_releases(cluster, unique) == everything  # nothing uninstalled
    refusal = outcome.prune_refused
    assert refusal is not None
    assert refusal.releases == (f"{ns}/a", f"{ns}/b", f"{ns}/c")
    assert report.rollout is not None
    brake = report.rollout["brake"]
    assert brake["releases"] == [f"{ns}/a", f"{ns}/b", f"{ns}/c"]
    assert brake["prune_id"] == refusal.prune_id
    assert f"add '{refusal.prune_id}' to deletionBrake.confirm in fleet.yaml" in brake["how_to_confirm"]

    again, _ = agent.run_pass()  # the next pass (same commit) still refuses, and says the same
    assert again.prune_refused == refusal
    assert flotilla_releases(cluster, unique) == everything

    confirm = {"apiVersion": API_VERSION, "kind": "Fleet", "deletionBrake": {"confirm": [refusal.prune_id]}}
    repo.write({"fleet.yaml": yaml.safe_dump(confirm)}, "confirm the retirement")
    confirmed, report = agent.run_pass()

    assert sorted(confirmed.pruned) == [f"{ns}/a", f"{ns}/b", f"{ns}/c"]
    assert flotilla_releases(cluster, unique) == set()
    assert report.rollout is None  # nothing refused any more

    # the next ordinary operation: the store comes back and gets its bundles again
    repo.write({f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"})}, "reopen the store")
    assert agent.run_pass()[0].ok
    assert flotilla_releases(cluster, unique) == everything


def test_a_confirmation_for_one_prune_does_not_let_a_different_mass_prune_through(
    cluster, fleet_repo_factory, harness_factory, unique
):
    ns = unique
    stores = [{"clusterSelector": {"matchLabels": {"tier": "store"}}}]
    files = {
        f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"}),
        **{f"bundles/{name}/bundle.yaml": bundle_file(name, ns, targets=stores) for name in ("a", "b", "c")},
        "bundles/keep/bundle.yaml": bundle_file("keep", ns, targets=[{"clusterName": unique}]),
        "fleet.yaml": yaml.safe_dump(
            {
                "apiVersion": API_VERSION,
                "kind": "Fleet",
                "deletionBrake": {"confirm": [f"{unique}:000000000000"]},
            }
        ),
    }
    repo = fleet_repo_factory(files)
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    repo.write({f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "retired"})}, "retire")
    outcome, _ = agent.run_pass()
    assert outcome.prune_refused is not None  # 3 of 4 is more than 50 %, and the stale id does not match
    assert len(flotilla_releases(cluster, unique)) == 4
