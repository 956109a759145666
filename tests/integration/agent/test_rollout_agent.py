"""Staged rollouts, the agent's side, against a real hub process and real clusters: a ``wait: false``
canary that turns Degraded while baking, a maintenance window closing mid-rollout, and a prune the
deletion brake refused, allowed once from the hub.

Agents run pass by pass in-process (``harness``) and report to a ``flotilla-hub serve`` process on
loopback; each pass's report is flushed to the hub before the next step.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.loop import Agent
from agent.reconcile import PassOutcome, ReleaseOutcome
from tests.integration.agent.harness import (
    API_VERSION,
    AgentHarness,
    bundle_file,
    by_bundle,
    cluster_file,
    flotilla_releases,
    get,
)
from tests.integration.hub.hubserver import SubprocessHub, create_token, create_viewer
from tests.localcluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster


class Hub:
    def __init__(self, server: SubprocessHub) -> None:
        self.server = server
        self.viewer = create_viewer(server.data_dir)

    def agent(self, make: Callable[..., AgentHarness], cluster: Any, name: str, url: str) -> AgentHarness:
        token = create_token(self.server.data_dir, name)
        return make(cluster, name, url, hub_url=self.server.url, hub_token=token)

    def get(self, path: str) -> Any:
        response = httpx.get(
            self.server.url + path, headers={"Authorization": f"Bearer {self.viewer}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", *args, "--data-dir", str(self.server.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    server = SubprocessHub(tmp_path / "hub").start()
    try:
        yield Hub(server)
    finally:
        server.stop()


def reported_pass(agent: AgentHarness) -> PassOutcome:
    """One pass, its report delivered to the hub."""
    outcome, _ = agent.run_pass()
    assert agent.agent is not None
    assert agent.agent.reporter is not None
    assert agent.agent.reporter.flush(timeout=10)
    return outcome


def until(
    agent: AgentHarness, bundle: str, done: Callable[[ReleaseOutcome], bool], what: str
) -> ReleaseOutcome:
    deadline = time.monotonic() + 90
    while True:
        release = by_bundle(reported_pass(agent))[bundle]
        if done(release):
            return release
        assert time.monotonic() < deadline, f"{what}: {release}"
        time.sleep(1)


def ready_at(commit: str) -> Callable[[ReleaseOutcome], bool]:
    return lambda release: release.state == "Ready" and release.applied_commit == commit


def test_a_wait_false_canary_that_turns_degraded_while_baking_rolls_back_and_halts_the_rollout(
    cluster, fleet_repo_factory, harness_factory, unique, hub
):
    ns, canary, later = unique, unique, f"{unique}-later"

    def web(**values: Any) -> str:
        return bundle_file(
            "web",
            ns,
            targets=[{"clusterName": canary}, {"clusterName": later}],
            helm={"timeoutSeconds": 60, "wait": False},
            values={"region": "v1", **values},
            rollout={"waves": [{"name": "canary", "clusterNames": [canary], "bakeSeconds": 300}]},
        )

    repo = fleet_repo_factory(
        {
            f"clusters/{canary}.yaml": cluster_file(canary, {}),
            f"clusters/{later}.yaml": cluster_file(later, {}),  # wave rest: never heard from
            "bundles/web/bundle.yaml": web(),
        }
    )
    agent = hub.agent(harness_factory, cluster, canary, repo.url)
    good = until(agent, "web", ready_at(repo.clone.head()), "the first install")

    # helm returns at once (wait: false); the new pods never get ready and the Deployment's progress
    # deadline passes: Degraded, within the wave's bake time
    bad = repo.write(
        {
            "bundles/web/bundle.yaml": web(
                region="v2", podLabels={NEVER_READY_LABEL: "true"}, progressDeadlineSeconds=2
            )
        },
        "a build that never gets ready",
    )
    started = time.monotonic()
    applied = by_bundle(reported_pass(agent))["web"]
    assert applied.action == "upgrade"
    assert applied.state in ("InProgress", "Ready"), applied  # helm itself succeeded
    failed = until(agent, "web", lambda r: r.state != "InProgress", "the canary turned Degraded")
    assert failed.state == "Failed", failed
    print(f"\nwait: false apply -> Degraded -> rolled back in {time.monotonic() - started:.1f}s")
    assert "turned Degraded before its bake time was over" in failed.message
    assert f"rolled back to revision {good.helm_revision}" in failed.message
    deployment = get(cluster, f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    assert deployment is not None
    assert NEVER_READY_LABEL not in deployment["spec"]["template"]["metadata"]["labels"]  # the v1 pods again

    rollout = hub.get("/api/v1/rollouts/web")
    assert rollout["commit"] == bad
    assert rollout["state"] == "halted"
    assert [f["cluster"] for f in rollout["failing"]] == [canary]

    held = by_bundle(reported_pass(agent))["web"]  # nothing is applied again: the go was withdrawn
    assert held.state == "Failed"
    assert held.helm_revision == failed.helm_revision
    assert "rolled back" in held.message

    fixed = repo.write({"bundles/web/bundle.yaml": web(region="v3")}, "the fix")  # a new rollout from wave 1
    release = until(agent, "web", ready_at(fixed), "the fix rolled forward")
    assert release.helm_revision is not None
    assert release.helm_revision > (failed.helm_revision or 0)
    assert hub.get("/api/v1/rollouts/web")["commit"] == fixed


class Clock:
    def __init__(self, when: str) -> None:
        self.now = datetime.fromisoformat(when).timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: str) -> None:
        self.now = datetime.fromisoformat(when).timestamp()


def test_a_maintenance_window_closing_mid_rollout_holds_the_rest_until_it_opens_again(
    cluster, make_cluster, fleet_repo_factory, harness_factory, unique, hub
):
    ns, canary, store = unique, unique, f"{unique}-store"
    night = {
        "apiVersion": API_VERSION,
        "kind": "Fleet",
        "maintenanceWindows": [
            {
                "name": "night",
                "clusterSelector": {"matchLabels": {"window": "night"}},
                "schedule": "0 2 * * *",
                "durationMinutes": 60,
                "timeZone": "UTC",
            }
        ],
    }

    def files(region: str) -> dict[str, str]:
        return {
            "bundles/web/bundle.yaml": bundle_file(
                "web",
                ns,
                targets=[{"clusterName": canary}, {"clusterName": store}],
                values={"region": region},
                rollout={"waves": [{"name": "canary", "clusterNames": [canary]}]},
            ),
            "bundles/plain/bundle.yaml": bundle_file(  # not staged: windows hold it too
                "plain", f"{ns}-plain", targets=[{"clusterName": store}], values={"region": region}
            ),
        }

    repo = fleet_repo_factory(
        {
            f"clusters/{canary}.yaml": cluster_file(canary, {}),
            f"clusters/{store}.yaml": cluster_file(store, {"window": "night"}),
            "fleet.yaml": yaml.safe_dump(night),
            **files("v1"),
        }
    )
    first = repo.clone.head()
    front = hub.agent(harness_factory, cluster, canary, repo.url)
    back = hub.agent(harness_factory, make_cluster(), store, repo.url)
    clock = Clock("2026-12-01T02:10:00+00:00")  # the store's own clock: inside its window
    until(front, "web", ready_at(first), "the canary installed")
    back.agent = Agent.from_settings(back.settings())
    back.agent.clock = clock
    until(back, "web", ready_at(first), "the store installed in its window")

    second = repo.write(files("v2"), "v2")
    clock.set("2026-12-01T02:40:00+00:00")
    early = by_bundle(reported_pass(back))
    assert early["web"].state == "Pending"
    assert "waiting for wave canary" in early["web"].message  # the canary first
    assert early["plain"].applied_commit == second  # an unstaged bundle applies at once, in the window
    before = by_bundle(reported_pass(back))["web"].helm_revision
    until(front, "web", ready_at(second), "the canary upgraded")  # the store's wave is released now

    clock.set("2026-12-01T03:05:00+00:00")  # ... but its window has closed
    for _ in range(2):
        outcome = reported_pass(back)
        web = by_bundle(outcome)["web"]
        assert web.state == "Pending", web
        assert web.message == "waiting for a maintenance window (night)"
        assert web.helm_revision == before
        assert outcome.helm_calls == ()  # nothing applied outside the window
        assert outcome.api_writes == 0
    rest = hub.get("/api/v1/rollouts/web")["waves"][1]
    assert rest["counts"]["failed"] == 0

    clock.set("2026-12-02T02:01:00+00:00")  # the window opens again: the held change continues
    release = until(back, "web", ready_at(second), "the store upgraded in its next window")
    assert release.helm_revision == (before or 0) + 1


def test_a_refused_prune_allowed_once_from_the_hub_reaches_that_clusters_agent_and_is_consumed(
    cluster, fleet_repo_factory, harness_factory, unique, hub
):
    ns = unique
    stores = [{"clusterSelector": {"matchLabels": {"tier": "store"}}}]
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"}),
            **{f"bundles/{n}/bundle.yaml": bundle_file(n, ns, targets=stores) for n in ("a", "b", "c")},
        }
    )
    agent = hub.agent(harness_factory, cluster, unique, repo.url)
    assert reported_pass(agent).ok
    everything = {(ns, "a"), (ns, "b"), (ns, "c")}

    def retire() -> str:
        repo.write({f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "retired"})}, "retire the store")
        refused = reported_pass(agent).prune_refused
        assert refused is not None
        assert flotilla_releases(cluster, unique) == everything
        return refused.prune_id

    prune_id = retire()
    assert f"flotilla-hub rollout allow-prune {unique} --id {prune_id}" in reported_pass(agent).prune_skipped
    shown = hub.get("/api/v1/rollouts")["deletion_brakes"]
    assert [(b["cluster"], b["prune_id"]) for b in shown] == [(unique, prune_id)]

    wrong = hub.command("rollout", "allow-prune", "another-cluster", "--id", prune_id)
    assert wrong.returncode == 2
    assert "belongs to cluster" in wrong.stderr
    allowed = hub.command("rollout", "allow-prune", unique, "--id", prune_id, "--by", "ops")
    assert allowed.returncode == 0, allowed.stderr

    pruned = reported_pass(agent)  # the allowance reaches the agent in its gate answer
    assert sorted(pruned.pruned) == [f"{ns}/a", f"{ns}/b", f"{ns}/c"]
    assert flotilla_releases(cluster, unique) == set()
    assert hub.get("/api/v1/rollouts")["deletion_brakes"] == []
    audit = hub.server.log_path.read_text()
    assert "prune_allowed" in audit
    assert "prune_allowance_delivered" in audit

    # the next ordinary operation: the store reopens; retired again, the same prune is refused again:
    # the allowance was consumed
    repo.write({f"clusters/{unique}.yaml": cluster_file(unique, {"tier": "store"})}, "reopen the store")
    assert reported_pass(agent).ok
    assert flotilla_releases(cluster, unique) == everything
    assert retire() == prune_id
    assert reported_pass(agent).pruned == ()
    assert flotilla_releases(cluster, unique) == everything
