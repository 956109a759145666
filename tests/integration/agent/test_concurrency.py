"""Nothing is rolled back under a running helm (issue 10, item 3): a second agent waits on the
first's Lease, a young pending release started by someone else is left alone, and the crash cases
(the agent, or only its helm, SIGKILLed) still recover."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agent import report
from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get
from tests.localcluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster


def web(name: str, ns: str, timeout: int = 60, **values: object) -> str:
    return bundle_file(
        "web", ns, targets=[{"clusterName": name}], helm={"timeoutSeconds": timeout}, values=values
    )


def revisions(cluster, ns: str) -> list[tuple[int, str]]:
    items = cluster.api(f"/api/v1/namespaces/{ns}/secrets?labelSelector=owner%3Dhelm,name%3Dweb")["items"]
    return sorted((int(s["metadata"]["labels"]["version"]), s["metadata"]["labels"]["status"]) for s in items)


def wait_for_pending(cluster, ns: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(status.startswith("pending") for _, status in revisions(cluster, ns)):
        assert time.monotonic() < deadline, "the upgrade never started"
        time.sleep(0.3)


def seeded(cluster, fleet_repo_factory, harness_factory, unique: str):
    """A repo with one bundle ``web`` at region v1 and an agent that has installed it."""
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/web/bundle.yaml": web(unique, unique, region="v1"),
        }
    )
    agent = harness_factory(cluster, unique, repo.url)
    assert agent.run_pass()[0].ok
    return repo, agent


def slow_upgrade_files(name: str, ns: str, timeout: int) -> dict[str, str]:
    return {
        "bundles/web/bundle.yaml": web(name, ns, timeout, region="v2", podLabels={NEVER_READY_LABEL: "true"})
    }


def test_a_second_agent_during_a_slow_upgrade_rolls_nothing_back_and_takes_over_after(
    cluster, fleet_repo_factory, harness_factory, unique, tmp_path
):
    repo, first = seeded(cluster, fleet_repo_factory, harness_factory, unique)
    first.restart()
    repo.write(slow_upgrade_files(unique, unique, timeout=20), "v2 never becomes ready")
    running = subprocess.Popen(
        first.command("once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_pending(cluster, unique)
        second = harness_factory(cluster, unique, repo.url, state_dir=tmp_path / "second-agent")

        outcome, _ = second.run_pass()

        release = by_bundle(outcome)["web"]
        assert release.action == "wait"
        assert release.state == "Pending"
        assert "may still be running" in release.message  # the pending revision is young
        assert outcome.helm_calls == ()
        assert any(status == "pending-upgrade" for _, status in revisions(cluster, unique))
    finally:
        _, err = running.communicate(timeout=180)
    # The first agent's own upgrade timed out and it rolled back itself: one attempt, one rollback.
    assert [status for _, status in revisions(cluster, unique)] == ["superseded", "failed", "deployed"], err

    repo.write({"bundles/web/bundle.yaml": web(unique, unique, region="v3")}, "v3")
    outcome, _ = second.run_pass()
    assert by_bundle(outcome)["web"].state == "Ready"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "v3"


def test_two_agents_started_at_once_never_both_act(
    cluster, fleet_repo_factory, harness_factory, unique, tmp_path
):
    repo, seed = seeded(cluster, fleet_repo_factory, harness_factory, unique)
    seed.restart()
    repo.write(slow_upgrade_files(unique, unique, timeout=10), "v2 never becomes ready")
    agents = [harness_factory(cluster, unique, repo.url, state_dir=tmp_path / f"agent-{i}") for i in range(2)]
    processes = [
        subprocess.Popen(a.command("once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in agents
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]

    history = revisions(cluster, unique)
    # Exactly one upgrade attempt (revision 2) and its rollback (3): had both acted there would be more.
    assert [status for _, status in history] == ["superseded", "failed", "deployed"], (history, outputs)
    waited = [out for out in outputs if "another agent" in out or "may still be running" in out]
    assert len(waited) == 1, outputs


def test_a_young_pending_release_started_by_someone_else_is_left_to_finish(
    cluster, fleet_repo_factory, harness_factory, unique
):
    _repo, agent = seeded(cluster, fleet_repo_factory, harness_factory, unique)
    # An operator's own helm upgrade (no agent, no Lease): slow, it waits for pods that never get ready.
    never_ready = f'podLabels={{"{NEVER_READY_LABEL}": "true"}}'
    operator = subprocess.Popen(
        [cluster.tools.helm, "upgrade", "web", "tests/charts/app", "--namespace", unique, "--reuse-values",
         "--set-json", never_ready, "--wait", "--timeout", "15s"],
        env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for_pending(cluster, unique)

        outcome, _ = agent.run_pass()

        release = by_bundle(outcome)["web"]
        assert release.action == "wait", release
        assert "may still be running" in release.message
        assert outcome.helm_calls == ()
    finally:
        operator.communicate(timeout=120)
    assert operator.returncode != 0  # its own wait timed out: helm marks the revision failed itself
    assert [status for _, status in revisions(cluster, unique)][-1] == "failed"

    outcome, _ = agent.run_pass()  # the next pass puts the release back to what Git says
    assert by_bundle(outcome)["web"].state == "Ready"


def test_only_helm_killed_mid_upgrade_says_so_and_the_release_is_recovered(
    cluster, fleet_repo_factory, harness_factory, unique
):
    repo, agent = seeded(cluster, fleet_repo_factory, harness_factory, unique)
    agent.restart()
    repo.write(slow_upgrade_files(unique, unique, timeout=120), "v2 never becomes ready")
    process = subprocess.Popen(
        agent.command("once"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_pending(cluster, unique)
    helm_pid = next(
        pid for pid in children(process.pid) if b"helm" in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    os.kill(helm_pid, signal.SIGKILL)
    process.communicate(timeout=120)

    message = report.load_last(agent.state_dir).bundles[0].message
    assert message.startswith("helm upgrade was killed by SIGKILL"), message
    assert "rolled back to revision 1" in message
    # The latest revision is the rollback (Helm leaves the killed revision's own record as it was).
    assert revisions(cluster, unique)[-1][1] == "deployed"
    repo.write({"bundles/web/bundle.yaml": web(unique, unique, region="v3")}, "v3")
    outcome, _ = agent.run_pass()
    assert by_bundle(outcome)["web"].state == "Ready"
    assert get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")["data"]["region"] == "v3"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
