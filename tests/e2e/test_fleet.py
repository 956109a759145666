"""End to end: real clusters, a real Git server, a real hub and real agents as separate processes.

One fleet (the first three clusters of fleet-repo-example) serves the whole module; each scenario
pushes commits and undoes them, so the next starts from a converged fleet.  Agents poll every 3 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.demo import DemoFleet, example_clusters
from tests.fixtures.gitserver import git

pytestmark = pytest.mark.e2e

INTERVAL = 3.0
CLUSTERS = example_clusters()[:3]  # ap-south-mumbai-1, ap-south-pune-1, eu-west-dublin-1
EU = "eu-west-dublin-1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFleet]:
    yield from running_fleet(tmp_path_factory.mktemp("e2e") / "fleet", CLUSTERS, INTERVAL, ready_timeout=300)


def running_fleet(
    workdir: Path, clusters: list[str], interval: float, *, ready_timeout: float, **options: Any
) -> Iterator[DemoFleet]:
    """A started fleet, Ready, for a module's scenarios (stale after 3 intervals, offline after 6)."""
    fleet = DemoFleet(
        workdir, clusters, interval=interval, stale_after_intervals=3, offline_after_intervals=6, **options
    )
    try:
        fleet.start()
        fleet.wait_until_ready(timeout=ready_timeout)
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def clone(demo: DemoFleet) -> Any:
    return demo.working_clone()


def eventually(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as error:  # the hub being restarted
            last = error
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def hub_clusters(demo: DemoFleet) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in demo.hub_get("/api/v1/clusters")["clusters"]}


def all_ready_at(demo: DemoFleet, commit: str) -> bool:
    clusters = hub_clusters(demo)
    return all(
        clusters.get(name, {}).get("health") == "Ready"
        and clusters[name].get("connectivity") == "Online"
        and clusters[name].get("commit") == commit
        for name in CLUSTERS
    )


def planned_releases(clone_dir: Path, cluster: str) -> set[tuple[str, str]]:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flotilla-agent"), "plan", "--cluster", cluster, str(clone_dir),
         "--output", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {
        (r["namespace"], r["release"]) for r in json.loads(result.stdout)["releases"] if not r.get("paused")
    }


def installed_releases(demo: DemoFleet, cluster: str) -> set[tuple[str, str]]:
    secrets = demo.clusters[cluster].api("/api/v1/secrets?labelSelector=owner%3Dhelm,status%3Ddeployed")[
        "items"
    ]
    return {(s["metadata"]["namespace"], s["metadata"]["labels"]["name"]) for s in secrets}


def helm_revisions(demo: DemoFleet, cluster: str) -> dict[str, int]:
    secrets = demo.clusters[cluster].api("/api/v1/secrets?labelSelector=owner%3Dhelm,status%3Ddeployed")[
        "items"
    ]
    return {s["metadata"]["labels"]["name"]: int(s["metadata"]["labels"]["version"]) for s in secrets}


def edit_yaml(clone: Any, relative: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = clone.path / relative
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_convergence_every_cluster_runs_exactly_its_planned_releases(demo, clone):
    head = clone.head()
    eventually("every cluster Ready and Online at the initial commit", lambda: all_ready_at(demo, head))
    for name in CLUSTERS:
        assert installed_releases(demo, name) == planned_releases(clone.path, name), name
    clusters = hub_clusters(demo)
    assert clusters["ap-south-mumbai-1"]["labels"]["arch"] == "arm64"


def test_rollout_of_one_regions_value_upgrades_only_that_region_and_rollback_converges(demo, clone):
    before = {name: helm_revisions(demo, name) for name in CLUSTERS}

    def eu_ntp(document: dict[str, Any]) -> None:
        for target in document["targets"]:
            if target.get("clusterSelector", {}).get("matchLabels", {}).get("region") == "eu-west":
                target["values"]["ntpServer"] = "ntp2.eu-west.example.net"

    edit_yaml(clone, "bundles/edge-base/bundle.yaml", eu_ntp)
    new = clone.commit_and_push("edge-base: new NTP server for eu-west")
    pushed = time.monotonic()
    eventually("the fleet Ready at the new commit", lambda: all_ready_at(demo, new))
    elapsed = time.monotonic() - pushed
    print(f"\npush to whole fleet Ready: {elapsed:.1f}s (interval {INTERVAL:.0f}s)")

    after = {name: helm_revisions(demo, name) for name in CLUSTERS}
    assert after[EU]["edge-base"] == before[EU]["edge-base"] + 1
    for name in CLUSTERS:
        if name != EU:
            assert after[name] == before[name], f"{name} was upgraded by an eu-west-only change"
    configmap = demo.clusters[EU].api("/api/v1/namespaces/edge-system/configmaps?labelSelector=")["items"]
    assert any("ntp2.eu-west.example.net" in json.dumps(c.get("data", {})) for c in configmap)
    rollout = demo.hub_get("/api/v1/bundles/edge-base")
    assert {p["cluster"]: (p["commit"], p["state"]) for p in rollout["placements"]} == {
        name: (new, "Ready") for name in CLUSTERS
    }

    git("revert", "--no-edit", "HEAD", cwd=clone.path)
    clone.push()
    reverted = clone.head()
    eventually("the fleet Ready again after git revert", lambda: all_ready_at(demo, reverted))
    assert helm_revisions(demo, EU)["edge-base"] == after[EU]["edge-base"] + 1
    configmap = demo.clusters[EU].api("/api/v1/namespaces/edge-system/configmaps")["items"]
    assert not any("ntp2.eu-west.example.net" in json.dumps(c.get("data", {})) for c in configmap)


def test_retarget_a_relabelled_cluster_gains_and_loses_the_right_bundles(demo, clone):
    pune = "ap-south-pune-1"
    original = (clone.path / f"clusters/ap-south/{pune}.yaml").read_text()
    gained_before = planned_releases(clone.path, pune)

    def make_store(document: dict[str, Any]) -> None:
        document["labels"]["tier"] = "store"

    edit_yaml(clone, f"clusters/ap-south/{pune}.yaml", make_store)
    commit = clone.commit_and_push(f"{pune} becomes a store")
    wanted = planned_releases(clone.path, pune)
    assert wanted != gained_before, "the relabel must change what the cluster gets"
    eventually(f"{pune} runs its new plan", lambda: installed_releases(demo, pune) == wanted)
    eventually("the fleet Ready at the relabel commit", lambda: all_ready_at(demo, commit))

    (clone.path / f"clusters/ap-south/{pune}.yaml").write_text(original)
    commit = clone.commit_and_push(f"{pune} back to a factory")
    eventually(f"{pune} back on its old plan", lambda: installed_releases(demo, pune) == gained_before)
    eventually("the fleet Ready again", lambda: all_ready_at(demo, commit))


def test_a_broken_chart_fails_only_its_bundle_and_the_hub_shows_helms_error(demo, clone):
    # kiosk-ui gets its own copy of the chart with a template error; nothing else uses that copy.
    broken = clone.path / "charts/kiosk-broken"
    shutil.copytree(clone.path / "charts/edge-service", broken)
    (broken / "templates/broken.yaml").write_text('{{ include "kiosk.missing-helper" . }}\n')

    def use_broken_chart(document: dict[str, Any]) -> None:
        document["chart"]["path"] = "../../charts/kiosk-broken"

    edit_yaml(clone, "bundles/kiosk-ui/bundle.yaml", use_broken_chart)
    commit = clone.commit_and_push("kiosk-ui: a chart with a template error")
    kiosk_clusters = [n for n in CLUSTERS if ("retail", "kiosk") in planned_releases(clone.path, n)]
    assert kiosk_clusters, "the example repo must give kiosk-ui to at least one demo cluster"

    def kiosk_failed() -> bool:
        clusters = hub_clusters(demo)
        return all(
            clusters[name]["desired_commit"] == commit
            and clusters[name]["bundles"].get("kiosk-ui") == "Failed"
            for name in kiosk_clusters
        )

    eventually("kiosk-ui Failed where it runs", kiosk_failed)
    for name in CLUSTERS:
        detail = demo.hub_get(f"/api/v1/clusters/{name}")
        for bundle in detail["report"]["bundles"]:
            if bundle["bundle"] == "kiosk-ui":
                assert bundle["state"] == "Failed"
                assert "kiosk.missing-helper" in bundle["message"], bundle["message"]
            else:
                assert bundle["state"] in ("Ready", "Paused"), (name, bundle["bundle"], bundle["state"])
    assert "kiosk.missing-helper" in demo.hub_get_text(f"/clusters/{kiosk_clusters[0]}")

    git("revert", "--no-edit", "HEAD", cwd=clone.path)
    clone.push()
    eventually("the fleet Ready after the revert", lambda: all_ready_at(demo, clone.head()), timeout=180)


def test_partition_hub_down_agents_keep_reconciling_and_the_hub_catches_up(demo, clone):
    demo.stop_hub()

    def log_level_warn(document: dict[str, Any]) -> None:
        document.setdefault("values", {})["logLevel"] = "warn"

    edit_yaml(clone, "bundles/edge-base/bundle.yaml", log_level_warn)
    commit = clone.commit_and_push("edge-base: logLevel warn while the hub is down")
    for name in CLUSTERS:
        eventually(
            f"{name} applies the commit with the hub down",
            lambda name=name: demo.last_report(name).get("source", {}).get("applied_commit") == commit,
        )
    demo.start_hub()
    eventually(
        "the hub shows the fleet at the commit made while it was down", lambda: all_ready_at(demo, commit)
    )

    git("revert", "--no-edit", "HEAD", cwd=clone.path)
    clone.push()
    eventually("the fleet Ready after the revert", lambda: all_ready_at(demo, clone.head()))


def test_partition_git_down_prunes_nothing_and_the_hub_shows_the_source_error(demo, clone):
    before = {name: installed_releases(demo, name) for name in CLUSTERS}
    demo.stop_git()
    try:

        def source_errors_everywhere() -> bool:
            clusters = hub_clusters(demo)
            return all(clusters[name]["source_error"] for name in CLUSTERS)

        eventually("every cluster reports the source error", source_errors_everywhere)
        clusters = hub_clusters(demo)
        assert all("127.0.0.1" in clusters[name]["source_error"] for name in CLUSTERS)
        time.sleep(2 * INTERVAL)
        for name in CLUSTERS:
            assert installed_releases(demo, name) == before[name], f"{name} lost releases while Git was down"
    finally:
        demo.start_git()
    eventually("the source error clears", lambda: all_ready_at(demo, clone.head()))


def test_a_stopped_agent_shows_stale_then_offline_never_just_ready(demo):
    name = "ap-south-pune-1"
    demo.stop_agent(name)
    try:
        eventually(f"{name} Stale", lambda: hub_clusters(demo)[name]["connectivity"] == "Stale", timeout=60)
        eventually(
            f"{name} Offline", lambda: hub_clusters(demo)[name]["connectivity"] == "Offline", timeout=60
        )
        page = demo.hub_get_text("/")
        assert "Offline" in page
    finally:
        demo.start_agent(name)
    eventually(f"{name} Online again", lambda: hub_clusters(demo)[name]["connectivity"] == "Online")
