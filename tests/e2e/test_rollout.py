"""End to end: a staged rollout across four real clusters in three waves, with real agents, Git and hub.

The fleet is the example repo's first four clusters plus a bundle ``probe`` staged in waves:
``canary`` (mumbai, bake 4 s), ``early`` (pune and dublin, deadline 25 s) and the implicit ``rest``
(lyon).  Agents poll every 2 s.  Each scenario starts from a converged fleet and leaves one.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.demo import BIN, DemoFleet, example_clusters
from tests.e2e.test_fleet import edit_yaml, eventually, helm_revisions, running_fleet
from tests.fixtures.gitserver import git

pytestmark = pytest.mark.e2e

INTERVAL = 2.0
CANARY, PUNE, DUBLIN, LYON = example_clusters()[:4]
CLUSTERS = [CANARY, PUNE, DUBLIN, LYON]
BAKE = 4
DEADLINE = 25
PROBE = "bundles/probe/bundle.yaml"
PROBE_BUNDLE = {
    "apiVersion": "flotilla.dev/v1alpha1",
    "kind": "Bundle",
    "name": "probe",
    "namespace": "probe",
    "chart": {"path": "../../charts/edge-service"},
    "values": {"config": {"GREETING": "hello"}},
    # only the clusters this fleet runs: a wave counts every cluster the repo puts in it
    "targets": [{"clusterName": name} for name in CLUSTERS],
    "helm": {"timeoutSeconds": 12},
    "rollout": {
        "waves": [
            {"name": "canary", "clusterNames": [CANARY], "bakeSeconds": BAKE},
            {"name": "early", "clusterNames": [PUNE, DUBLIN], "deadlineSeconds": DEADLINE},
        ]
    },
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoFleet]:
    yield from running_fleet(
        tmp_path_factory.mktemp("e2e-rollout") / "fleet",
        CLUSTERS,
        INTERVAL,
        ready_timeout=400,
        seed_files={PROBE: yaml.safe_dump(PROBE_BUNDLE, sort_keys=False)},
    )


@pytest.fixture(scope="module")
def clone(demo: DemoFleet) -> Any:
    return demo.working_clone()


def probe_placements(demo: DemoFleet) -> dict[str, dict[str, Any]]:
    return {p["cluster"]: p for p in demo.hub_get("/api/v1/bundles/probe")["placements"]}


def probe_at(demo: DemoFleet, commit: str, names: list[str] = CLUSTERS) -> bool:
    placements = probe_placements(demo)
    return all(
        placements.get(n, {}).get("commit") == commit and placements[n]["state"] == "Ready" for n in names
    )


def picture(demo: DemoFleet) -> dict[str, Any]:
    return dict(demo.hub_get("/api/v1/rollouts/probe"))


def probe_message(demo: DemoFleet, name: str) -> str:
    bundles = {b["bundle"]: b for b in demo.last_report(name).get("bundles", [])}
    return str(bundles.get("probe", {}).get("message", ""))


def set_greeting(clone: Any, greeting: str) -> str:
    edit_yaml(clone, PROBE, lambda d: d["values"]["config"].update(GREETING=greeting))
    return str(clone.commit_and_push(f"probe greeting {greeting}"))


def hub_command(demo: DemoFleet, *args: str) -> None:
    command = [str(BIN / "flotilla-hub"), *args, "--data-dir", str(demo.workdir / "hub")]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def test_a_good_commit_moves_wave_by_wave_each_after_its_bake_time(demo, clone):
    eventually("the first install converged", lambda: probe_at(demo, clone.head()), timeout=120)
    commit = set_greeting(clone, "v1")
    pushed = time.monotonic()
    applied: dict[str, float] = {}
    ready: dict[str, float] = {}
    while len(ready) < len(CLUSTERS):
        assert time.monotonic() - pushed < 180, f"the rollout did not finish: {probe_placements(demo)}"
        now = time.monotonic() - pushed
        for name, placement in probe_placements(demo).items():
            if placement["commit"] == commit:
                applied.setdefault(name, now)
                if placement["state"] == "Ready":
                    ready.setdefault(name, now)
        time.sleep(0.25)
    print(f"\ncommit -> fleet Ready {max(ready.values()):.1f}s; applied at {applied}; ready at {ready}")
    # wave 2 changed only after the canary had been Ready for its bake time, wave 3 after wave 2
    assert min(applied[PUNE], applied[DUBLIN]) >= ready[CANARY] + BAKE - 0.5
    assert applied[LYON] >= max(ready[PUNE], ready[DUBLIN]) - 0.25
    # a rollout's evaluation may be up to --rollout-view-seconds (1 s) old: complete within a few
    rollout = eventually(
        "the rollout complete", lambda: (p := picture(demo))["state"] == "complete" and p, timeout=10
    )
    assert rollout["commit"] == commit
    assert [w["name"] for w in rollout["waves"]] == ["canary", "early", "rest"]


def test_a_bad_commit_halts_in_the_canary_which_rolls_back_then_a_revert_passes(demo, clone):
    good = clone.head()
    eventually("converged", lambda: probe_at(demo, good))
    before = {name: helm_revisions(demo, name)["probe"] for name in CLUSTERS}
    # a workload that never gets Ready: its pods ask for more CPU than any node has
    edit_yaml(clone, PROBE, lambda d: d["values"].update(resources={"requests": {"cpu": "100000"}}))
    bad = clone.commit_and_push("probe: an impossible CPU request")

    def halted_picture() -> dict[str, Any] | None:
        shown = picture(demo)
        return shown if shown["state"] == "halted" else None

    halted = eventually("the rollout halted in the canary", halted_picture, timeout=120)
    assert halted["commit"] == bad
    assert [f["cluster"] for f in halted["failing"]] == [CANARY]
    assert halted["waves"][0]["state"] == "halted"

    time.sleep(4 * INTERVAL)  # nothing further changes, however long we wait
    for name in (PUNE, DUBLIN, LYON):
        assert helm_revisions(demo, name)["probe"] == before[name], name
        assert "halted in wave canary" in probe_message(demo, name), name
    deployment = demo.clusters[CANARY].api("/apis/apps/v1/namespaces/probe/deployments/probe")
    requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"].get("requests", {})  # type: ignore[index]
    assert requests.get("cpu") != "100000", "the canary was not rolled back"
    canary = {b["bundle"]: b for b in demo.last_report(CANARY)["bundles"]}["probe"]
    assert canary["state"] == "Failed"
    assert "rolled back" in canary["message"]

    git("revert", "--no-edit", "HEAD", cwd=clone.path)
    clone.push()
    reverted = clone.head()
    eventually("the revert reached every cluster", lambda: probe_at(demo, reverted), timeout=120)
    for name in (PUNE, DUBLIN, LYON):  # clusters that never got the bad change: a no-op
        assert helm_revisions(demo, name)["probe"] == before[name], name
    # nobody needed a gate for the revert, yet the hub shows it as the bundle's rollout, complete
    eventually(
        "the revert's rollout complete",
        lambda: picture(demo)["commit"] == reverted and picture(demo)["state"] == "complete",
        timeout=30,
    )


def test_a_clusters_token_cannot_read_another_clusters_gates(demo):
    token = (demo.workdir / "tokens" / PUNE).read_text().strip()
    body = json.dumps({"cluster": CANARY, "commit": "c" * 40, "bundles": {}}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{demo.hub_url}/api/v1/rollout/gates",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - loopback
    assert refused.value.code == 403


def test_pause_holds_the_rollout_and_resume_lets_it_finish(demo, clone):
    previous = clone.head()
    eventually("converged", lambda: probe_at(demo, previous))
    before = helm_revisions(demo, CANARY)["probe"]
    hub_command(demo, "rollout", "pause", "probe", "--by", "e2e")
    commit = set_greeting(clone, "paused")
    eventually("the canary holds, saying why", lambda: "paused" in probe_message(demo, CANARY))
    time.sleep(3 * INTERVAL)
    assert helm_revisions(demo, CANARY)["probe"] == before  # nothing applied, not even in wave 1
    assert probe_placements(demo)[CANARY]["commit"] == previous  # and it says it still runs that
    assert picture(demo)["state"] == "paused"
    hub_command(demo, "rollout", "resume", "probe")
    eventually("the resumed rollout finished", lambda: probe_at(demo, commit), timeout=120)


def test_an_offline_cluster_does_not_block_past_the_deadline_and_catches_up_when_back(demo, clone):
    previous = clone.head()
    eventually("converged", lambda: probe_at(demo, previous))
    demo.stop_agent(DUBLIN)
    try:
        commit = set_greeting(clone, "offline")
        eventually("pune got it", lambda: probe_at(demo, commit, [CANARY, PUNE]), timeout=60)
        assert probe_placements(demo)[LYON]["commit"] == previous  # held: dublin may still report
        eventually(
            "lyon got it after the deadline", lambda: probe_at(demo, commit, [LYON]), timeout=DEADLINE + 60
        )
        early = picture(demo)["waves"][1]
        assert early["counts"]["failed"] == 0
        assert early["counts"]["offline"] + early["counts"]["not_yet"] == 1
        assert probe_placements(demo)[DUBLIN]["commit"] == previous
    finally:
        demo.start_agent(DUBLIN)
    eventually("dublin caught up", lambda: probe_at(demo, commit), timeout=90)


def test_with_the_hub_down_no_wave_advances_and_nothing_is_rolled_back_then_it_resumes(demo, clone):
    previous = clone.head()
    eventually("converged", lambda: probe_at(demo, previous))
    before = {name: helm_revisions(demo, name)["probe"] for name in CLUSTERS}
    commit = set_greeting(clone, "hub-down")
    eventually("the canary applied it", lambda: probe_at(demo, commit, [CANARY]), timeout=60)
    canary_revision = helm_revisions(demo, CANARY)["probe"]
    demo.stop_hub()
    try:
        time.sleep(BAKE + 4 * INTERVAL)
        for name in (PUNE, DUBLIN, LYON):
            assert helm_revisions(demo, name)["probe"] == before[name], name
            assert "the hub could not be asked" in probe_message(demo, name), name
        assert helm_revisions(demo, CANARY)["probe"] == canary_revision  # kept, not rolled back
    finally:
        demo.start_hub()
    eventually("the rollout resumed and finished", lambda: probe_at(demo, commit), timeout=120)


def probe_greeting(demo: DemoFleet, name: str) -> str:
    """The GREETING the probe's ConfigMap holds on the cluster now (what it really runs)."""
    config = demo.clusters[name].api("/api/v1/namespaces/probe/configmaps/probe-config")
    return str((config.get("data") or {}).get("GREETING", ""))


EXTRA = "bundles/extra/bundle.yaml"


def test_a_returning_cluster_at_a_newer_unreleased_commit_runs_its_waves_released_revision(demo, clone):
    """Dublin (wave early) is offline while commit ``released`` rolls out to its wave; the rollout of
    a newer commit is then held (paused).  Back online, Dublin's checkout is at the newer commit, yet
    it converges to ``released`` — not to the held commit, and not left at the old one — installs the
    newer commit's unstaged bundle and prunes nothing; on resume it moves forward with its wave."""
    previous = clone.head()
    eventually("converged", lambda: probe_at(demo, previous))
    demo.stop_agent(DUBLIN)
    try:
        released = set_greeting(clone, "released")
        eventually("the rest got it", lambda: probe_at(demo, released, [CANARY, PUNE, LYON]), timeout=120)
        hub_command(demo, "rollout", "pause", "probe", "--by", "e2e")
        edit_yaml(clone, PROBE, lambda d: d["values"]["config"].update(GREETING="unreleased"))
        extra = {**PROBE_BUNDLE, "name": "extra", "namespace": "extra", "targets": [{"clusterName": DUBLIN}]}
        del extra["rollout"]
        newer = clone.commit_and_push("probe greeting unreleased, and a new bundle for dublin", {
            EXTRA: yaml.safe_dump(extra, sort_keys=False)
        })  # fmt: skip
        eventually("the canary holds the newer commit", lambda: "paused" in probe_message(demo, CANARY))
        before = set(helm_revisions(demo, DUBLIN))
        assert probe_placements(demo)[DUBLIN]["commit"] == previous
    finally:
        demo.start_agent(DUBLIN)
    back = time.monotonic()

    seen: list[tuple[Any, ...]] = []

    def stepped_back() -> bool:
        seen[:] = [
            (
                probe_placements(demo)[DUBLIN]["commit"],
                probe_greeting(demo, DUBLIN),
                demo.last_report(DUBLIN)["source"]["desired_commit"],
            )
        ]
        return seen[0] == (released, "released", newer)

    try:
        eventually("dublin runs its wave's released revision", stepped_back, timeout=90)
    except AssertionError as error:
        raise AssertionError(f"{error}; dublin at (commit, greeting, checkout) {seen}") from None
    print(f"\nreturn -> at the wave's released revision {time.monotonic() - back:.1f}s")
    time.sleep(3 * INTERVAL)  # and it stays there: never the held commit
    assert probe_greeting(demo, DUBLIN) == "released"
    assert "released for" in probe_message(demo, DUBLIN)
    assert "paused" in probe_message(demo, DUBLIN)
    assert set(helm_revisions(demo, DUBLIN)) == before | {"extra"}  # nothing pruned, the new bundle in
    assert probe_greeting(demo, CANARY) == "released"  # the pause holds the canary too

    hub_command(demo, "rollout", "resume", "probe")
    eventually("the resumed rollout reached dublin too", lambda: probe_at(demo, newer), timeout=120)
    assert probe_greeting(demo, DUBLIN) == "unreleased"
