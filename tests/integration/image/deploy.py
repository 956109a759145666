"""The agent image deployed as the pod from ``flotilla-agent manifests``, against a local control
plane, a Git server and a hub (the tests in this directory and tests/benchmarks/bench_image.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agent.install_options import InstallOptions, RbacMode
from agent.manifests import build_manifests
from tests.fixtures.gitserver import GitServer
from tests.image import engine
from tests.integration.hub.hubserver import InProcessHub, create_token, create_viewer
from tests.integration.image import pod
from tests.integration.test_manifests_apply import create, secret
from tests.localcluster import Cluster

# Example clusters whose `arch` label matches the image (the arm64 one has six bundles, one paused).
EXAMPLE_CLUSTER = {"amd64": "eu-west-dublin-1", "arm64": "eu-west-lyon-1", "armv7": "eu-west-lyon-1"}


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
    arch: str,
    rbac: RbacMode,
    cluster: Cluster,
    image: str,
    tmp_path: Path,
    *,
    with_identity: bool = True,
    example_cluster: str | None = None,
    interval: int = 5,
    limit_cpu: bool | None = None,
) -> Iterator[Deployed]:
    hub_dir = tmp_path / "hub"
    viewer = create_viewer(hub_dir)
    hub = InProcessHub(hub_dir).start()
    git = GitServer(tmp_path / "git").start()
    container: engine.Container | None = None
    try:
        url = git.create_repo("fleet", from_dir=engine.REPO_ROOT / "fleet-repo-example")
        name = example_cluster or EXAMPLE_CLUSTER[arch]
        namespace = f"flotilla-{arch}-{uuid.uuid4().hex[:6]}"
        options = InstallOptions(
            cluster=name,
            repo_url=url,
            hub_url=hub.url,
            interval=interval,
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
            limit_cpu=arch == "amd64" if limit_cpu is None else limit_cpu,
        )
        _, spec = pod.agent_container(deployment)
        container = engine.start(f"flotilla-it-{namespace}", image, spec["args"], options=options_for_docker)
        yield Deployed(arch, container, cluster, hub, viewer, git, options, deployment)
    finally:
        if container is not None:
            container.remove()
        git.stop()
        hub.stop()
