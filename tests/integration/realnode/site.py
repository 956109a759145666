"""One edge site on the real node: the agent installed by ``flotilla-agent bootstrap`` runs as a real
pod, follows a fleet repo on a loopback Git server and reports to a ``flotilla-hub`` process; a
workload bundle runs on the cluster's kwok node.  The tests change the site only by ``git commit``
(and by stopping the hub or killing a container)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from agent import cli
from hub import reportstore, store
from hub.contract import StatusReport
from tests.fixtures.gitserver import GitServer
from tests.integration.agent.harness import FleetRepo, bundle_file, cluster_file, make_fleet_repo
from tests.integration.hub.hubserver import SubprocessHub, create_token, create_viewer
from tests.localcluster import Cluster
from tests.realnode import RealNode, create_node_namespace

T = TypeVar("T")
BUNDLE = "bundles/flotilla-system/bundle.yaml"
INTERVAL = 5


@dataclass
class Site:
    cluster: Cluster
    node: RealNode
    repo: FleetRepo
    hub: SubprocessHub
    viewer: str
    name: str
    namespace: str
    app_namespace: str

    # --- what the site looks like ---------------------------------------------------------------

    def agent_pods(self) -> list[dict[str, Any]]:
        """The agent's pods that are not being deleted, oldest first."""
        listed: Any = self.cluster.api(
            f"/api/v1/namespaces/{self.namespace}/pods?labelSelector=app.kubernetes.io%2Fname%3Dflotilla-agent"
        )
        pods = [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]
        return sorted(pods, key=lambda p: p["metadata"]["creationTimestamp"])

    def ready_agents(self) -> list[tuple[str, str]]:
        """(pod uid, image) of every Ready agent pod."""
        found = []
        for pod in self.agent_pods():
            conditions = pod.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                found.append((pod["metadata"]["uid"], pod["spec"]["containers"][0]["image"]))
        return found

    def deployment_image(self) -> str:
        dep: Any = self.cluster.api(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/flotilla-agent")
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    def record(self) -> dict[str, Any] | None:
        """The self-upgrade record the agents keep in the cluster."""
        try:
            found: Any = self.cluster.api(
                f"/api/v1/namespaces/{self.namespace}/configmaps/flotilla-agent-upgrade"
            )
        except OSError:  # urllib's HTTPError (404: no upgrade yet) is one
            return None
        return dict(json.loads(found["data"]["record.json"]))

    def release_revision(self, namespace: str, release: str) -> int:
        listed: Any = self.cluster.api(
            f"/api/v1/namespaces/{namespace}/secrets?labelSelector=owner%3Dhelm,name%3D{release},status%3Ddeployed"
        )
        [item] = listed["items"]
        return int(item["metadata"]["labels"]["version"])

    def reported(self) -> StatusReport | None:
        """The latest report the hub stored for this site (as the agent sent it)."""
        try:
            response = httpx.get(
                f"{self.hub.url}/api/v1/clusters/{self.name}",
                headers={"Authorization": f"Bearer {self.viewer}"},
                timeout=5,
            )
        except httpx.TransportError:
            return None
        if response.status_code != 200:
            return None
        conn = store.connect(self.hub.data_dir, create=False)
        try:
            return reportstore.load_report(conn, self.name, int(response.json()["sequence"]))
        finally:
            conn.close()

    def agent_log(self, pod: dict[str, Any]) -> str:
        return self.node.pod_log(self.namespace, pod["metadata"]["name"], "agent")

    def describe(self) -> str:
        """Everything a failed wait should show: pods, record, the agents' last log lines."""
        lines = [f"deployment image: {self.deployment_image()}", f"record: {self.record()}"]
        for pod in self.agent_pods():
            statuses = pod.get("status", {}).get("containerStatuses", [])
            lines.append(f"pod {pod['metadata']['name']}: {json.dumps(statuses)[:600]}")
            lines.extend(self.agent_log(pod).splitlines()[-8:])
        if self.hub.log_path.exists():
            lines.append("hub log:")
            lines.extend(self.hub.log_path.read_text(errors="replace").splitlines()[-8:])
        return "\n".join(lines)

    # --- changing it ----------------------------------------------------------------------------

    def commit_agent(self, image: str, message: str) -> float:
        """Commit the agent's bundle with ``image``; returns when the push finished (epoch)."""
        bundle = yaml.safe_load((self.repo.clone.path / BUNDLE).read_text())
        bundle["values"]["image"] = image
        self.repo.write({BUNDLE: yaml.safe_dump(bundle, sort_keys=False)}, message)
        return time.time()

    def wait(self, what: str, check: Callable[[], T | None], timeout: float) -> T:
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.describe()}")
            time.sleep(1)

    def wait_upgraded(self, image: str, timeout: float) -> StatusReport:
        """One Ready agent pod runs ``image``, and the hub has its report that says so."""

        def done() -> StatusReport | None:
            ready = self.ready_agents()
            if not ready or any(i != image for _, i in ready) or len(self.agent_pods()) != 1:
                return None
            report = self.reported()
            if report is not None and report.agent_image == image and report.health == "Ready":
                return report
            return None

        return self.wait(f"the agent {image} Ready and reporting", done, timeout)

    def upgrade(self, image: str, timeout: float) -> tuple[StatusReport, float]:
        """Commit ``image`` and wait for it: (the new agent's report, seconds from the commit)."""
        committed = self.commit_agent(image, f"agent: {image}")
        report = self.wait_upgraded(image, timeout)
        return report, time.time() - committed

    def wait_reported(self, result: str, timeout: float) -> StatusReport:
        """The hub's latest report names a self-upgrade whose result starts with ``result``."""

        def told() -> StatusReport | None:
            report = self.reported()
            return report if report is not None and report.self_upgrade_result.startswith(result) else None

        return self.wait(f"a report of a {result} self-upgrade", told, timeout)


def with_env(extra: str) -> Callable[[dict[str, Any]], None]:
    """An image config change for :meth:`RealNode.derive_image`: one more environment variable."""

    def change(config: dict[str, Any]) -> None:
        config["config"]["Env"] = [*config["config"].get("Env", []), extra]

    return change


def exits_at_start(config: dict[str, Any]) -> None:
    """A broken build: its entrypoint exits with an error at once."""
    config["config"]["Entrypoint"] = ["/bin/sh", "-c", "echo 'this build is broken' >&2; exit 3", "--"]
    config["config"]["Cmd"] = None


@contextmanager
def bootstrapped_site(
    cluster: Cluster, node: RealNode, image: str, workdir: Path, *, deadline: int
) -> Iterator[Site]:
    """Bootstrap the agent (``image``) on the real node of ``cluster``; the Git server and the hub
    are stopped when the site is done with."""
    suffix = uuid.uuid4().hex[:6]
    name, namespace, app_namespace = f"site-{suffix}", f"flotilla-{suffix}", f"app-{suffix}"
    git = GitServer(workdir / "git").start()
    hub_dir = workdir / "hub"
    viewer = create_viewer(hub_dir)
    hub = SubprocessHub(hub_dir).start()
    try:
        repo = make_fleet_repo(
            git,
            workdir,
            "fleet",
            {
                f"clusters/{name}.yaml": cluster_file(name, {"region": "eu"}),
                "bundles/web/bundle.yaml": bundle_file("web", app_namespace, targets=[{"clusterName": name}]),
            },
        )
        # the agent's pods run on the real node (tests/realnode.py); the namespace exists first
        create_node_namespace(cluster, namespace)
        token = create_token(hub_dir, name)
        cluster.api(
            f"/api/v1/namespaces/{namespace}/secrets",
            method="POST",
            body={
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "flotilla-hub-token"},
                "stringData": {"token": token},
            },
        )
        args = [
            "bootstrap", "--kubeconfig", str(cluster.kubeconfig), "--helm", cluster.tools.helm,
            "--cluster", name, "--repo-url", repo.url, "--hub", hub.url, "--namespace", namespace,
            "--state-storage", "emptyDir", "--image", image, "--image-pull-policy", "Never",
            "--interval", str(INTERVAL), "--self-upgrade-deadline", str(deadline),
            "--write-bundle", str(repo.clone.path),
        ]  # fmt: skip
        out = StringIO()
        with redirect_stdout(out):
            code = cli.main(args)
        assert code == 0, out.getvalue()
        repo.clone.commit_and_push("manage the agent from Git")
        yield Site(cluster, node, repo, hub, viewer, name, namespace, app_namespace)
    finally:
        # the agent stops (its pods leave the node) before its Git server and hub go away
        with suppress(OSError):
            cluster.api(f"/apis/apps/v1/namespaces/{namespace}/deployments/flotilla-agent", method="DELETE")
        hub.stop()
        git.stop()
