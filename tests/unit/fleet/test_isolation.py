"""Failure isolation: a problem blocks what it concerns, on the clusters it concerns, and nothing
else; what it blocks is protected from pruning. `validate` still reports every problem."""

from __future__ import annotations

import pathlib

import pytest

from agent import fleet
from tests.unit.fleet.repos import HEADER, base_files, bundle, write_repo

Files = dict[str, str]


def api(files: Files, body: str = "dependsOn: [web]\ntargets:\n  - clusterSelector: {}\n") -> None:
    files["bundles/api/bundle.yaml"] = bundle("api", body)


def agent_plans(root: pathlib.Path) -> dict[str, fleet.AgentPlan]:
    loaded = fleet.load_fleet(root)
    return {name: fleet.plan_agent(loaded, name) for name in ("eu-1", "us-1")}


def applied(plan: fleet.AgentPlan) -> list[str]:
    return [release.bundle for release in plan.plan.releases]


@pytest.mark.parametrize(
    "broken",
    [
        "kind: Bundle\nname: web\n  bad indentation: [\n",  # not YAML: its name is unknown
        HEADER + "kind: Bundle\nname: web\nnamespace: web\nchrt:\n  path: ../../charts/app\n",  # a typo
    ],
)
def test_a_broken_bundle_blocks_itself_and_its_dependents_with_one_problem(
    tmp_path: pathlib.Path, broken: str
) -> None:
    files = base_files()
    api(files)
    files["bundles/web/bundle.yaml"] = broken
    root = write_repo(tmp_path, files)

    problems = fleet.validate_repo(root)
    assert [p.file for p in problems] == ["bundles/web/bundle.yaml"]  # no "dependsOn unknown" for api
    for plan in agent_plans(root).values():
        assert applied(plan) == ["base"]
        assert [(b.bundle, b.reason) for b in plan.blocked] == [
            ("api", "not applied: it depends on 'web', which has problems")
        ]
        assert {"web", "api"} <= plan.protected_bundles
        assert "base" not in plan.protected_bundles
        assert plan.problems == tuple(problems)


def test_a_broken_values_file_or_chart_blocks_the_bundles_using_it(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["charts/other/Chart.yaml"] = "apiVersion: v2\nname: other\nversion: not-semver\n"
    files["bundles/web/bundle.yaml"] = bundle(
        "web", "valuesFiles: [v.yaml]\ntargets:\n  - clusterSelector: {}\n"
    )
    files["bundles/web/v.yaml"] = "a: [\n"
    api(files, "targets:\n  - clusterSelector: {}\n")
    files["bundles/api/bundle.yaml"] = files["bundles/api/bundle.yaml"].replace("charts/app", "charts/other")
    root = write_repo(tmp_path, files)
    assert sorted({p.file for p in fleet.validate_repo(root)}) == [
        "bundles/web/v.yaml",
        "charts/other/Chart.yaml",
    ]
    for plan in agent_plans(root).values():
        assert applied(plan) == ["base"]
        assert {"web", "api"} <= plan.protected_bundles


def test_a_broken_cluster_file_blocks_only_that_cluster(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["clusters/us-1.yaml"] = files["clusters/us-1.yaml"].replace("labels:", "lables:")
    root = write_repo(tmp_path, files)
    loaded = fleet.load_fleet(root)
    with pytest.raises(fleet.FleetRepoError) as raised:
        fleet.plan_agent(loaded, "us-1")
    assert [p.file for p in raised.value.problems] == ["clusters/us-1.yaml"]
    assert applied(fleet.plan_agent(loaded, "eu-1")) == ["base", "web"]


def test_a_duplicate_cluster_name_blocks_that_cluster(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["clusters/zz-copy.yaml"] = files["clusters/us-1.yaml"]
    loaded = fleet.load_fleet(write_repo(tmp_path, files))
    with pytest.raises(fleet.FleetRepoError):
        fleet.plan_agent(loaded, "us-1")
    assert applied(fleet.plan_agent(loaded, "eu-1")) == ["base", "web"]


def test_a_broken_group_blocks_the_bundles_that_use_it(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["groups/arm.yaml"] = files["groups/arm.yaml"].replace("matchLabels", "matchLabel")
    api(files, "targets:\n  - clusterGroup: arm\n  - clusterName: us-1\n")
    root = write_repo(tmp_path, files)
    assert [p.file for p in fleet.validate_repo(root)] == ["groups/arm.yaml"]  # no "unknown group" in api
    for name, plan in agent_plans(root).items():
        assert applied(plan) == ["base", "web"]
        assert "api" in plan.protected_bundles
        # us-1 is targeted by name, so it knows api is held back there; eu-1 cannot know (the group is broken)
        assert [b.bundle for b in plan.blocked] == (["api"] if name == "us-1" else [])


def test_a_release_collision_blocks_both_bundles_on_that_cluster_only(tmp_path: pathlib.Path) -> None:
    files = base_files()
    api(files, "releaseName: web\ntargets:\n  - clusterName: us-1\n")
    files["bundles/api/bundle.yaml"] = files["bundles/api/bundle.yaml"].replace(
        "namespace: api", "namespace: web"
    )
    root = write_repo(tmp_path, files)
    problems = fleet.validate_repo(root)
    assert len(problems) == 1
    assert "both install release 'web'" in problems[0].message
    plans = agent_plans(root)
    assert applied(plans["eu-1"]) == ["base", "web"]
    assert applied(plans["us-1"]) == ["base"]
    assert sorted(b.bundle for b in plans["us-1"].blocked) == ["api", "web"]
    assert "both install release 'web'" in plans["us-1"].problems[-1].message


def test_a_dependency_missing_on_one_cluster_blocks_the_dependent_there_only(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace(
        "  - clusterSelector: {}", "  - clusterName: eu-1"
    )
    plans = agent_plans(write_repo(tmp_path, files))
    assert applied(plans["eu-1"]) == ["base", "web"]
    assert applied(plans["us-1"]) == []
    assert [b.bundle for b in plans["us-1"].blocked] == ["web"]
    assert "not targeted at cluster us-1" in plans["us-1"].problems[0].message


def test_a_dependency_cycle_blocks_its_members(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/base/bundle.yaml"] = files["bundles/base/bundle.yaml"].replace(
        "targets:", "dependsOn: [web]\ntargets:"
    )
    api(files, "targets:\n  - clusterSelector: {}\n")
    plan = agent_plans(write_repo(tmp_path, files))["eu-1"]
    assert applied(plan) == ["api"]
    assert {"base", "web"} <= plan.protected_bundles


@pytest.mark.parametrize("empty", [True, False])
def test_no_bundles_directory_or_an_empty_one_is_a_fleet_with_no_bundles(
    tmp_path: pathlib.Path, empty: bool
) -> None:
    files = {name: text for name, text in base_files().items() if not name.startswith("bundles/")}
    root = write_repo(tmp_path, files)
    if empty:
        (root / "bundles").mkdir()
    assert fleet.validate_repo(root) == []
    plan = agent_plans(root)["eu-1"]
    assert plan.plan.releases == ()
    assert plan.protected_bundles == frozenset()


def test_a_bundle_directory_without_bundle_file_is_protected(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/api/README.md"] = "moved\n"
    plan = agent_plans(write_repo(tmp_path, files))["eu-1"]
    assert applied(plan) == ["base", "web"]
    assert "api" in plan.protected_bundles
