"""The agent as it runs for weeks (issue 10, items 2, 4 and 6): CRDs installed after it started are
discovered under ``run``, a CRD removed by hand is reported; Git and the cluster API down each get
their own error; a Deployment mid-rollout stays InProgress until its rollout completes."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from agent import report
from tests.integration.agent.harness import PassWatcher, bundle_file, by_bundle, cluster_file
from tests.localcluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster

CHARTS = Path(__file__).resolve().parents[2] / "charts"


def chart_files(name: str) -> dict[str, str]:
    root = CHARTS / name
    return {f"charts/{name}/{p.relative_to(root)}": p.read_text() for p in root.rglob("*") if p.is_file()}


def crd_bundle(kind: str, name: str, ns: str) -> str:
    return bundle_file(kind, ns, targets=[{"clusterName": name}], chart={"path": f"../../charts/{kind}"})


def test_a_crd_chart_added_while_run_is_running_is_ready_without_a_restart_and_a_removed_crd_is_reported(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/gadgets/bundle.yaml": crd_bundle("gadgets", unique, unique),
            **chart_files("gadgets"),
            **chart_files("widgets"),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)
    process = subprocess.Popen([*agent.command("run"), "--interval", "3"], stderr=subprocess.PIPE, text=True)
    watcher = PassWatcher(process)
    wait_for = watcher.wait_for
    try:
        wait_for(lambda p: p["health"] == "Ready", "the first CRD chart never became Ready")
        commit = repo.write({"bundles/widgets/bundle.yaml": crd_bundle("widgets", unique, unique)}, "widgets")
        wait_for(
            lambda p: p["commit"] == commit[:12] and p["health"] == "Ready", "the widgets never got Ready"
        )
        # The pass that installs the chart, or at the latest the next one (one interval), is Ready:
        # the new CRD's kind was looked up afresh, no restart needed.
        at_commit = [p["health"] for p in watcher.passes if p["commit"] == commit[:12]]
        assert "Ready" in at_commit[:2], at_commit
        states = {b.bundle: b.state for b in report.load_last(agent.state_dir).bundles}
        assert states == {"gadgets": "Ready", "widgets": "Ready"}

        cluster.api(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.flotilla.dev",
            method="DELETE",
        )

        def widgets_state(_: dict) -> bool:
            last = report.load_last(agent.state_dir)
            return last is not None and {b.bundle: b.state for b in last.bundles}.get("widgets") == "Degraded"

        wait_for(widgets_state, "a removed CRD was never reported")
        last = report.load_last(agent.state_dir)
        widgets = next(b for b in last.bundles if b.bundle == "widgets")
        assert "does not serve test.flotilla.dev/v1 Widget" in widgets.non_ready[0].message
        assert next(b for b in last.bundles if b.bundle == "gadgets").state == "Ready"
        assert process.poll() is None  # reported, not crashed on
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_git_and_the_cluster_api_both_down_show_both_errors_and_api_down_alone_is_no_source_error(
    cluster, git_server, fleet_repo_factory, harness_factory, unique, tmp_path
):
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/web/bundle.yaml": bundle_file("web", unique, targets=[{"clusterName": unique}]),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    agent.restart()
    dead_api = tmp_path / "dead-api-kubeconfig"
    config = yaml.safe_load(cluster.agent_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens there
    dead_api.write_text(yaml.safe_dump(config))
    agent.overrides["kubeconfig"] = dead_api

    _, alone = agent.run_pass()
    assert alone.errors.cluster_api
    assert "127.0.0.1:9" in alone.errors.cluster_api
    assert alone.errors.source is None
    assert alone.source.error is None
    assert alone.health == "Failed"
    agent.restart()

    git_server.stop()
    _, both = agent.run_pass()
    assert both.errors.source
    assert both.errors.cluster_api
    assert [b.bundle for b in both.bundles] == ["web"]  # the last known bundles, said to be unchecked
    assert "cluster API is unreachable" in both.bundles[0].message
    table = subprocess.run(
        [str(Path(agent.command()[0])), "status", "--state-dir", str(agent.state_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    ).stdout  # fmt: skip
    assert "\nsource: " in table
    assert "\ncluster API: " in table


def test_a_deployment_mid_rollout_is_in_progress_until_the_rollout_completes(
    cluster, fleet_repo_factory, harness_factory, unique
):
    def web(**values: object) -> str:
        return bundle_file(
            "web",
            unique,
            targets=[{"clusterName": unique}],
            helm={"wait": False},
            values={"replicas": 2, **values},
        )

    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": web()}
    )
    agent = harness_factory(cluster, unique, repo.url)
    deadline = time.monotonic() + 60
    while by_bundle(agent.run_pass()[0])["web"].state != "Ready":
        assert time.monotonic() < deadline
        time.sleep(1)
    # The new pods never become ready: without --wait helm returns at once and the rollout hangs.
    repo.write({"bundles/web/bundle.yaml": web(region="v2", podLabels={NEVER_READY_LABEL: "true"})}, "stuck")
    for _ in range(3):
        outcome, _ = agent.run_pass()
        release = by_bundle(outcome)["web"]
        assert release.state == "InProgress", release
        assert any(r.kind == "Deployment" for r in release.non_ready)
        time.sleep(1)
    repo.write({"bundles/web/bundle.yaml": web(region="v3")}, "fixed")
    deadline = time.monotonic() + 60
    while (release := by_bundle(agent.run_pass()[0])["web"]).state != "Ready":
        assert release.state == "InProgress", release
        assert time.monotonic() < deadline
        time.sleep(1)
