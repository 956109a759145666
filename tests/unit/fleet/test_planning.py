"""The planner: which bundles a cluster gets, their merged values, their order."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from agent import fleet
from tests.unit.fleet.repos import base_files, bundle, write_repo


def plan(root: pathlib.Path, cluster: str) -> fleet.ClusterPlan:
    return fleet.plan_cluster(fleet.load_repo(root), cluster)


def test_values_merge_in_the_documented_order(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/values/one.yaml"] = "layer: file-1\nfrom: {file1: true}\nkeep: {file: 1}\n"
    files["bundles/web/values/two.yaml"] = "layer: file-2\nfrom: {file2: true}\n"
    files["bundles/web/bundle.yaml"] = bundle(
        "web",
        """\
        values:
          layer: bundle
          from: {bundle: true}
          keep: {bundle: 1}
        valuesFiles: [values/one.yaml, values/two.yaml]
        targets:
          - clusterSelector: {}
            values: {layer: target-1, from: {target1: true}}
          - clusterName: eu-1
            values: {layer: target-2, from: {target2: true}}
          - clusterName: us-1
            values: {layer: not-for-eu}
        """,
    )
    values = {r.bundle: r.values for r in plan(write_repo(tmp_path, files), "eu-1").releases}["web"]
    assert values == {
        "layer": "target-2",
        "from": {"bundle": True, "file1": True, "file2": True, "target1": True, "target2": True},
        "keep": {"bundle": 1, "file": 1},
    }


def test_only_matching_bundles_are_planned(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/arm-only/bundle.yaml"] = bundle("arm-only", "targets:\n  - clusterGroup: arm\n")
    root = write_repo(tmp_path, files)
    assert [r.bundle for r in plan(root, "eu-1").releases] == ["arm-only", "base", "web"]
    assert [r.bundle for r in plan(root, "us-1").releases] == ["base", "web"]


def test_dependencies_come_first_and_ties_go_by_bundle_name(tmp_path: pathlib.Path) -> None:
    files = base_files()
    everywhere = "targets:\n  - clusterSelector: {}\n"
    files["bundles/aaa/bundle.yaml"] = bundle("aaa", "dependsOn: [web]\n" + everywhere)
    files["bundles/zzz/bundle.yaml"] = bundle("zzz", everywhere)
    files["bundles/mmm/bundle.yaml"] = bundle("mmm", "dependsOn: [zzz, base]\n" + everywhere)
    releases = plan(write_repo(tmp_path, files), "eu-1").releases
    assert [r.bundle for r in releases] == ["base", "web", "aaa", "zzz", "mmm"]
    assert {r.bundle: r.depends_on for r in releases}["mmm"] == ("base", "zzz")


def test_release_carries_chart_values_from_options_and_flags(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = textwrap.dedent(
        """\
        apiVersion: flotilla.dev/v1alpha1
        kind: Bundle
        name: web
        releaseName: shop
        namespace: retail
        chart:
          oci: oci://registry.example.com/charts/shop
          version: ~1.4.0
        valuesFrom:
          - {kind: Secret, name: shop-license}
          - {kind: ConfigMap, name: shop-site, namespace: site, key: site.yaml, optional: true}
        paused: true
        correctDrift: false
        helm: {timeoutSeconds: 60, wait: false, maxHistory: 2}
        targets:
          - clusterName: us-1
        """
    )
    (release,) = plan(write_repo(tmp_path, files), "us-1").releases[1:]
    assert (release.bundle, release.release, release.namespace) == ("web", "shop", "retail")
    assert release.chart == fleet.ChartSource(
        kind="oci", oci_ref="oci://registry.example.com/charts/shop", version="~1.4.0"
    )
    assert release.values_from == (
        fleet.ValuesRef(kind="Secret", name="shop-license"),
        fleet.ValuesRef(kind="ConfigMap", name="shop-site", namespace="site", key="site.yaml", optional=True),
    )
    assert release.options == fleet.HelmOptions(timeout_seconds=60, wait=False, max_history=2)
    assert (release.paused, release.correct_drift, release.values) == (True, False, {})


def test_local_chart_path_is_relative_to_the_repo_root_and_hashed(tmp_path: pathlib.Path) -> None:
    (release, _) = plan(write_repo(tmp_path, base_files()), "eu-1").releases
    assert release.chart.kind == "path"
    assert release.chart.path == "charts/app"
    assert release.chart.version == "1.0.0"  # from its Chart.yaml
    assert release.chart.content_digest is not None
    assert len(release.chart.content_digest) == 64


def test_repo_chart_source(tmp_path: pathlib.Path) -> None:
    files = base_files()
    files["bundles/web/bundle.yaml"] = files["bundles/web/bundle.yaml"].replace(
        "  path: ../../charts/app\n",
        "  repo: https://charts.example.com\n  name: shop\n  version: '>=1.0 <2.0'\n",
    )
    web = plan(write_repo(tmp_path, files), "eu-1").releases[1]
    assert web.chart == fleet.ChartSource(
        kind="repo", repo_url="https://charts.example.com", name="shop", version=">=1.0 <2.0"
    )


def test_unknown_cluster_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(fleet.UnknownClusterError) as raised:
        plan(write_repo(tmp_path, base_files()), "eu-2")
    assert (
        str(raised.value)
        == "unknown cluster 'eu-2': no file under clusters/ declares it (did you mean 'eu-1'?)"
    )


def test_a_cluster_no_bundle_targets_gets_an_empty_plan(tmp_path: pathlib.Path) -> None:
    files = base_files()
    for name in ("base", "web"):
        files[f"bundles/{name}/bundle.yaml"] = files[f"bundles/{name}/bundle.yaml"].replace(
            "- clusterSelector: {}", "- clusterName: us-1"
        )
    assert plan(write_repo(tmp_path, files), "eu-1").releases == ()


def test_dependency_order_never_drops_a_release_even_with_a_cycle() -> None:
    from agent.fleet.planning import dependency_order

    def release(name: str, *deps: str) -> fleet.DesiredRelease:
        return fleet.DesiredRelease(
            bundle=name,
            release=name,
            namespace="n",
            chart=fleet.ChartSource(kind="path", path="c"),
            values={},
            values_from=(),
            depends_on=deps,
            paused=False,
            correct_drift=True,
            options=fleet.HelmOptions(),
            digest="",
        )

    ordered = dependency_order({"a": release("a", "b"), "b": release("b", "a"), "c": release("c")})
    assert [r.bundle for r in ordered] == ["c", "a", "b"]
