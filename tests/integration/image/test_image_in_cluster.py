"""The image running as the pod ``flotilla-agent manifests`` describes, against a real local control
plane: installed with the shipped RBAC, authenticated only by a TokenRequest token for the
ServiceAccount those manifests create (mounted where the kubelet puts it, with the CA and namespace),
uid 10001 on a read-only root, the state in its volume.  It pulls the example fleet repo over smart
HTTP, installs the bundles of the example cluster whose ``arch`` label matches the image, and the
hub shows that cluster Ready with the agent's architecture.

amd64 (native) runs both RBAC modes and the no-identity control; arm64 (under QEMU) runs the full
scenario plus an offline restart and SIGTERM.  arm/v7 gets the smoke tests only (CI time: see the
README's image section)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.manifests import InstallOptions, RbacMode, build_manifests
from tests.fixtures.gitserver import GitServer
from tests.image import engine
from tests.integration.hub.hubserver import InProcessHub, create_token, create_viewer
from tests.integration.image import pod
from tests.integration.test_manifests_apply import create, secret
from tests.localcluster import Cluster

pytestmark = [pytest.mark.image, pytest.mark.cluster, pytest.mark.timeout(3600)]

# Example clusters whose `arch` label matches the image (the arm64 one has six bundles, one paused).
EXAMPLE_CLUSTER = {"amd64": "eu-west-dublin-1", "arm64": "eu-west-lyon-1"}
# Seconds for the first pass: helm installs every bundle; under QEMU each helm and git call is slow.
FIRST_PASS_SECONDS = {"amd64": 180, "arm64": 900}


@dataclass
class Deployed:
    arch: str
    container: engine.Container
    cluster: Cluster
    hub: InProcessHub
    viewer: str
    git: GitServer
    options: InstallOptions
    deployment: dict[str, Any]

    def hub_cluster(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.hub.url}/api/v1/clusters/{self.options.cluster}",
            headers={"Authorization": f"Bearer {self.viewer}"},
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    def hub_page(self) -> str:
        response = httpx.get(
            f"{self.hub.url}/clusters/{self.options.cluster}",
            headers={"Authorization": f"Bearer {self.viewer}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.text

    def helm_releases(self) -> set[str]:
        """Release names Helm recorded in the cluster (its Secrets), as the API server lists them."""
        listed: Any = self.cluster.api("/api/v1/secrets?labelSelector=owner%3Dhelm")
        return {item["metadata"]["labels"]["name"] for item in listed["items"]}

    def passes(self) -> list[dict[str, object]]:
        return [e for e in self.container.log_events() if e.get("event") == "pass_finished"]


@contextlib.contextmanager
def deployed_agent(
    arch: str, rbac: RbacMode, cluster: Cluster, image: str, tmp_path: Path, *, with_identity: bool = True
) -> Iterator[Deployed]:
    hub_dir = tmp_path / "hub"
    viewer = create_viewer(hub_dir)
    hub = InProcessHub(hub_dir).start()
    git = GitServer(tmp_path / "git").start()
    container: engine.Container | None = None
    try:
        url = git.create_repo("fleet", from_dir=engine.REPO_ROOT / "fleet-repo-example")
        name = EXAMPLE_CLUSTER[arch]
        namespace = f"flotilla-{arch}-{uuid.uuid4().hex[:6]}"
        options = InstallOptions(
            cluster=name,
            repo_url=url,
            hub_url=hub.url,
            interval=5,
            namespace=namespace,
            image=image,
            image_pull_policy="Never",
            rbac=rbac,
            state_storage="emptyDir",
        )
        manifests = build_manifests(options)
        for manifest in manifests:
            create(cluster, manifest)
            if manifest["kind"] == "Namespace":
                create(
                    cluster, secret(namespace, options.hub_token_secret, "token", create_token(hub_dir, name))
                )
        [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
        volumes = pod.prepare_volumes(deployment, cluster, namespace, tmp_path / "volumes")
        account = tmp_path / "serviceaccount"
        if with_identity:
            pod.service_account_files(cluster, namespace, "flotilla-agent", account)
        else:
            account.mkdir()
        options_for_docker = pod.docker_options(
            deployment,
            volumes=volumes,
            service_account=account,
            api_port=cluster.api_port,
            limit_cpu=arch == "amd64",
        )
        _, spec = pod.agent_container(deployment)
        container = engine.start(f"flotilla-it-{namespace}", image, spec["args"], options=options_for_docker)
        yield Deployed(arch, container, cluster, hub, viewer, git, options, deployment)
    finally:
        if container is not None:
            container.remove()
        git.stop()
        hub.stop()


def assert_ready_and_reported(deployed: Deployed) -> dict[str, object]:
    """The first pass installs the cluster's bundles; the hub shows it Ready, with the agent's arch."""
    [first] = deployed.container.wait_for_event("pass_finished", timeout=FIRST_PASS_SECONDS[deployed.arch])
    assert first["health"] == "Ready", deployed.container.logs()[-3000:]
    shown = deployed.hub_cluster()
    assert shown["health"] == "Ready"
    assert shown["agent_arch"] == engine.MACHINES[deployed.arch]
    assert f"on {engine.MACHINES[deployed.arch]}" in deployed.hub_page()
    active = {b for b, state in shown["bundles"].items() if state != "Paused"}
    assert active
    assert all(shown["bundles"][b] == "Ready" for b in active), shown["bundles"]
    assert deployed.helm_releases() >= {"edge-base", "telemetry-gateway"}
    return first


@pytest.fixture
def arch_cluster(make_cluster: Callable[..., Cluster]) -> Callable[[str], Cluster]:
    return lambda arch: make_cluster(arch, node_labels={"kubernetes.io/arch": arch})


@pytest.mark.parametrize("rbac", ["cluster-admin", "least-privilege"])
def test_amd64_pod_installs_its_bundles_with_the_shipped_rbac_and_reports_ready(
    rbac: RbacMode, arch_cluster: Callable[[str], Cluster], agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    cluster = arch_cluster("amd64")
    with deployed_agent("amd64", rbac, cluster, agent_image("amd64"), tmp_path) as deployed:
        assert_ready_and_reported(deployed)
        started = [e for e in deployed.container.log_events() if e.get("event") == "agent_started"]
        assert started[0]["machine"] == "x86_64"
        # the next pass changes nothing and stays Ready
        second = deployed.container.wait_for_event("pass_finished", timeout=60, count=2)[1]
        assert second["health"] == "Ready"
        assert second["helm_calls"] == 0


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
