"""The image running as the pod ``flotilla-agent manifests`` describes, against a real local control
plane: installed with the shipped RBAC, authenticated only by a TokenRequest token for the
ServiceAccount those manifests create (mounted where the kubelet puts it, with the CA and namespace),
uid 10001 on a read-only root, the state in its volume.  It pulls the example fleet repo over smart
HTTP, installs the bundles of the example cluster whose ``arch`` label matches the image, and the
hub shows that cluster Ready with the agent's architecture.

amd64 (native) runs both RBAC modes and the no-identity control; arm64 (under QEMU) runs the full
scenario plus an offline restart and SIGTERM; arm/v7 (under QEMU) the install and a no-change pass."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.install_options import RbacMode
from tests.image import engine
from tests.integration.image import pod
from tests.integration.image.deploy import Deployed, deployed_agent
from tests.localcluster import Cluster

pytestmark = [pytest.mark.image, pytest.mark.cluster, pytest.mark.timeout(3600)]

# Seconds for the first pass: helm installs every bundle; under QEMU each helm and git call is slow.
FIRST_PASS_SECONDS = {"amd64": 180, "arm64": 900, "armv7": 900}
# The node label Kubernetes gives each architecture (32-bit ARM is plain "arm").
NODE_ARCH = {"amd64": "amd64", "arm64": "arm64", "armv7": "arm"}


def assert_ready_and_reported(deployed: Deployed) -> dict[str, object]:
    """The first pass installs the cluster's bundles; the hub shows it Ready, with the agent's arch."""
    # the install pass may end InProgress while the pods start; a later one must be Ready
    first = deployed.container.wait_for_event(
        "pass_finished", timeout=FIRST_PASS_SECONDS[deployed.arch], where=lambda e: e["health"] == "Ready"
    )[0]
    shown = deployed.hub_cluster()
    assert shown["health"] == "Ready"
    assert shown["agent_arch"] == engine.MACHINES[deployed.arch]
    assert f"on {engine.MACHINES[deployed.arch]}" in deployed.hub_page()
    active = {b for b, state in shown["bundles"].items() if state != "Paused"}
    assert active
    assert all(shown["bundles"][b] == "Ready" for b in active), shown["bundles"]
    assert deployed.helm_releases() >= {"edge-base", "telemetry-gateway"}
    return first


def assert_next_pass_changes_nothing(deployed: Deployed, timeout: float) -> None:
    """The pass after the install runs no helm and stays Ready."""
    done = len(deployed.passes())
    following = deployed.container.wait_for_event("pass_finished", timeout=timeout, count=done + 1)[done]
    assert following["health"] == "Ready"
    assert following["helm_calls"] == 0


@pytest.fixture
def arch_cluster(make_cluster: Callable[..., Cluster]) -> Callable[[str], Cluster]:
    # a unique name: make_cluster's names repeat across parametrized tests, and etcd keeps the data
    def make(arch: str) -> Cluster:
        return make_cluster(
            f"{arch}-{uuid.uuid4().hex[:6]}", node_labels={"kubernetes.io/arch": NODE_ARCH[arch]}
        )

    return make


@pytest.mark.parametrize("rbac", ["cluster-admin", "least-privilege"])
def test_amd64_pod_installs_its_bundles_with_the_shipped_rbac_and_reports_ready(
    rbac: RbacMode, arch_cluster: Callable[[str], Cluster], agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    cluster = arch_cluster("amd64")
    with deployed_agent("amd64", rbac, cluster, agent_image("amd64"), tmp_path) as deployed:
        assert_ready_and_reported(deployed)
        started = [e for e in deployed.container.log_events() if e.get("event") == "agent_started"]
        assert started[0]["machine"] == "x86_64"
        assert_next_pass_changes_nothing(deployed, timeout=60)


def test_without_the_service_account_mount_the_pod_cannot_reach_the_cluster(
    arch_cluster: Callable[[str], Cluster], agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    """The control for the test above: the token is the agent's only way in (no kubeconfig)."""
    cluster = arch_cluster("amd64")
    with deployed_agent(
        "amd64", "cluster-admin", cluster, agent_image("amd64"), tmp_path, with_identity=False
    ) as d:
        [failed] = d.container.wait_for_event("startup_failed", timeout=60)
        assert "in-cluster service account" in str(failed["error"])
        assert d.helm_releases() == set()


def test_arm64_pod_installs_restarts_offline_from_its_volume_and_stops_on_sigterm(
    arch_cluster: Callable[[str], Cluster], agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    cluster = arch_cluster("arm64")
    with deployed_agent("arm64", "cluster-admin", cluster, agent_image("arm64"), tmp_path) as deployed:
        assert_ready_and_reported(deployed)
        releases = deployed.helm_releases()
        grace = pod.grace_seconds(deployed.deployment)

        # SIGTERM (what the kubelet sends): exit 0 well within the grace period
        code, seconds = deployed.container.stop(grace)
        assert code == 0, deployed.container.logs()[-3000:]
        assert seconds < grace
        assert any(e.get("event") == "agent_stopped" for e in deployed.container.log_events())

        # restart with the same volume while Git is down: boots from the last good commit
        deployed.git.stop()
        before = len(deployed.passes())
        engine.docker("start", deployed.container.name)
        deployed.container.wait_for_event("pass_finished", timeout=600, count=before + 1)
        shown = deployed.hub_cluster()
        assert shown["source_error"], shown
        assert deployed.helm_releases() == releases  # nothing deleted because the source was unreachable

        # Git is back: the next pass is an ordinary one again
        deployed.git.start()
        deployed.container.wait_for_event("pass_finished", timeout=600, count=len(deployed.passes()) + 1)
        back = deployed.hub_cluster()
        assert back["health"] == "Ready"
        assert not back["source_error"], back
        assert deployed.helm_releases() == releases


def test_armv7_pod_installs_its_bundles_and_reports_ready_then_a_pass_changes_nothing(
    arch_cluster: Callable[[str], Cluster], agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    """The same in-cluster scenario on arm/v7 (32-bit, the Raspberry Pi OS default), under QEMU."""
    cluster = arch_cluster("armv7")
    with deployed_agent("armv7", "cluster-admin", cluster, agent_image("armv7"), tmp_path) as deployed:
        assert_ready_and_reported(deployed)
        assert_next_pass_changes_nothing(deployed, timeout=300)
