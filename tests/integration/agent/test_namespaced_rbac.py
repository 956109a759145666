"""``flotilla-agent manifests --rbac namespaced`` on a real API server (issue 10, item 7): the agent,
with only those rights, installs into its target namespace, and a chart that writes into another
namespace fails with Helm's own "forbidden" error naming that namespace."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest
import yaml

from agent.install_options import InstallOptions
from agent.manifests import build_manifests
from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get
from tests.integration.test_manifests_apply import collection_path

pytestmark = pytest.mark.cluster


def create(cluster, manifest: dict[str, Any]) -> None:
    try:
        cluster.api(collection_path(manifest), method="POST", body=manifest)
    except urllib.error.HTTPError as error:
        if error.code != 409:
            raise


def service_account_kubeconfig(cluster, namespace: str, name: str, path) -> None:
    token = cluster.api(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        method="POST",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )["status"]["token"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {"server": cluster.server, "certificate-authority": str(cluster.pki / "ca.crt")},
            }
        ],
        "users": [{"name": "agent", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "agent"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def test_namespaced_rbac_lets_the_agent_work_in_its_namespaces_and_helm_is_forbidden_elsewhere(
    cluster, fleet_repo_factory, harness_factory, unique, tmp_path
):
    agent_ns, target, other = f"{unique}-agent", unique, f"{unique}-other"
    options = InstallOptions(
        cluster=unique, repo_url="unused", namespace=agent_ns, rbac="namespaced",
        target_namespaces=(target,), state_storage="emptyDir",
    )  # fmt: skip
    for manifest in build_manifests(options):
        if manifest["kind"] != "Deployment":
            create(cluster, manifest)
    create(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    kubeconfig = tmp_path / "namespaced-agent"
    service_account_kubeconfig(cluster, agent_ns, "flotilla-agent", kubeconfig)

    def web(**values: object) -> str:
        return bundle_file("web", target, targets=[{"clusterName": unique}], values=values)

    repo = fleet_repo_factory(
        {f"clusters/{unique}.yaml": cluster_file(unique, {}), "bundles/web/bundle.yaml": web()}
    )
    agent = harness_factory(
        cluster, unique, repo.url, kubeconfig=kubeconfig, namespaces=(target,), lease_namespace=agent_ns
    )
    first, _ = agent.run_pass()
    assert first.ok, first
    assert get(cluster, f"/apis/coordination.k8s.io/v1/namespaces/{agent_ns}/leases/flotilla-{unique}")

    repo.write(
        {
            "bundles/web/bundle.yaml": web(region="v2", elsewhere=other),
            "bundles/stray/bundle.yaml": bundle_file("stray", other, targets=[{"clusterName": unique}]),
        },
        "a chart writing into another namespace, and a bundle aimed at one",
    )
    outcome, _ = agent.run_pass()

    release = by_bundle(outcome)["web"]
    assert release.state == "Failed", release
    assert "forbidden" in release.message
    assert f'namespace "{other}"' in release.message
    assert "forbidden" in release.message.splitlines()[0]  # the cause leads
    stray = by_bundle(outcome)["stray"]
    assert stray.state == "Failed"
    assert f"namespace {other} is not one this agent may write to" in stray.message
    assert get(cluster, f"/api/v1/namespaces/{target}/configmaps/web-config")["data"]["region"] == "none"
    assert get(cluster, f"/api/v1/namespaces/{other}/configmaps/web-elsewhere") is None
