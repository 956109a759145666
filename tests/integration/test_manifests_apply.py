"""``flotilla-agent manifests`` output applied to a real API server: every object is accepted (the
namespace enforces the "restricted" Pod Security Standard, so the pod's hardening is checked by the
API server itself), the agent's pod is scheduled to the node, and the RBAC grants what it claims."""

from __future__ import annotations

import json
import time
import urllib.error
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agent.install_options import InstallOptions
from agent.manifests import build_manifests
from tests.localcluster import Cluster

pytestmark = pytest.mark.cluster

PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
}


def collection_path(manifest: dict[str, Any]) -> str:
    version = manifest["apiVersion"]
    prefix = "/api/v1" if version == "v1" else f"/apis/{version}"
    plural = PLURALS[manifest["kind"]]
    namespace = manifest["metadata"].get("namespace")
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def create(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, object]:
    """POST one object; a rejection fails the test with the API server's own message."""
    try:
        return cluster.api(collection_path(manifest), method="POST", body=manifest)
    except urllib.error.HTTPError as error:
        detail = json.loads(error.read() or b"{}").get("message", "")
        pytest.fail(
            f"API server rejected {manifest['kind']} {manifest['metadata']['name']}: {error.code} {detail}"
        )


def get(cluster: Cluster, path: str) -> Any:
    """A GET whose JSON the test walks freely."""
    return cluster.api(path)


def delete(cluster: Cluster, path: str) -> None:
    try:
        cluster.api(path, method="DELETE")
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise


def secret(namespace: str, name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {key: value},
    }


def scheduled_agent_pod(cluster: Cluster, namespace: str, timeout: float = 90) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io%2Fname%3Dflotilla-agent"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods: list[dict[str, Any]] = get(cluster, path)["items"]
        placed = [p for p in pods if p["spec"].get("nodeName")]
        if placed:
            return placed[0]
        time.sleep(0.5)
    replica_sets = get(cluster, f"/apis/apps/v1/namespaces/{namespace}/replicasets")["items"]
    events = get(cluster, f"/api/v1/namespaces/{namespace}/events")["items"]
    pytest.fail(
        "the agent's pod was not scheduled; replica sets: "
        + json.dumps([rs["status"] for rs in replica_sets])
        + "; events: "
        + json.dumps([e["message"] for e in events])
    )


def allowed(
    cluster: Cluster, namespace: str, verb: str, group: str, resource: str, in_namespace: str = ""
) -> bool:
    """Ask the API server whether the agent's service account may do this (SubjectAccessReview)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:flotilla-agent",
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": resource,
                "namespace": in_namespace,
            },
        },
    }
    result = cluster.api("/apis/authorization.k8s.io/v1/subjectaccessreviews", method="POST", body=review)
    status: Any = result["status"]
    return bool(status.get("allowed"))


@pytest.fixture
def installed(
    cluster: Cluster, request: pytest.FixtureRequest
) -> Iterator[tuple[InstallOptions, list[dict[str, Any]]]]:
    """Applies the manifests for ``request.param`` (rbac, storage) with the Secrets they reference."""
    rbac, storage = request.param
    namespace = f"flotilla-it-{storage.lower()}-{uuid.uuid4().hex[:8]}"  # never a terminating one
    options = InstallOptions(
        cluster="edge-it",
        repo_url="https://git.invalid/fleet.git",
        hub_url="https://hub.invalid",
        namespace=namespace,
        rbac=rbac,
        state_storage=storage,
        git_credentials_secret="fleet-git",
        image="registry.invalid/flotilla-agent:test",
    )
    manifests = build_manifests(options)
    created = []
    try:
        for manifest in manifests:
            create(cluster, manifest)
            created.append(manifest)
            if manifest["kind"] == "Namespace":  # what an operator does next: the referenced Secrets
                create(cluster, secret(namespace, "flotilla-hub-token", "token", "not-a-real-token"))
                create(
                    cluster, secret(namespace, "fleet-git", "credentials.yaml", "token: not-a-real-token\n")
                )
        yield options, manifests
    finally:
        for manifest in reversed(created):
            name = manifest["metadata"]["name"]
            delete(cluster, f"{collection_path(manifest)}/{name}")


INSTALLS = [("cluster-admin", "emptyDir"), ("least-privilege", "emptyDir"), ("cluster-admin", "hostPath")]


@pytest.mark.parametrize("installed", INSTALLS, indirect=True, ids=["-".join(i) for i in INSTALLS])
def test_every_object_is_accepted_and_the_agent_pod_is_scheduled_to_the_node(
    cluster: Cluster, installed: tuple[InstallOptions, list[dict[str, Any]]]
) -> None:
    options, manifests = installed
    for manifest in manifests:
        stored = get(cluster, f"{collection_path(manifest)}/{manifest['metadata']['name']}")
        assert stored["kind"] == manifest["kind"]

    pod = scheduled_agent_pod(cluster, options.namespace)
    assert pod["spec"]["nodeName"] == "kwok-node-0"
    assert pod["spec"]["serviceAccountName"] == "flotilla-agent"
    [container] = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == 10001
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["hub-token"]["secret"]["secretName"] == "flotilla-hub-token"
    assert volumes["git-credentials"]["secret"]["secretName"] == "fleet-git"
    labels = get(cluster, f"/api/v1/namespaces/{options.namespace}")["metadata"]["labels"]
    enforce = labels.get("pod-security.kubernetes.io/enforce")
    assert enforce == (None if options.state_storage == "hostPath" else "restricted")


@pytest.mark.parametrize(
    "installed", [("least-privilege", "emptyDir")], indirect=True, ids=["least-privilege"]
)
def test_least_privilege_role_allows_chart_workloads_and_denies_cluster_extensions(
    cluster: Cluster, installed: tuple[InstallOptions, list[dict[str, Any]]]
) -> None:
    options, _ = installed
    ns = options.namespace
    assert allowed(cluster, ns, "create", "", "namespaces")
    assert allowed(cluster, ns, "create", "apps", "deployments", "some-app")
    assert allowed(cluster, ns, "update", "", "secrets", "some-app")  # Helm's release records
    assert allowed(cluster, ns, "create", "rbac.authorization.k8s.io", "rolebindings", "some-app")
    assert not allowed(cluster, ns, "create", "apiextensions.k8s.io", "customresourcedefinitions")
    assert not allowed(
        cluster, ns, "create", "admissionregistration.k8s.io", "validatingwebhookconfigurations"
    )
    assert not allowed(cluster, ns, "escalate", "rbac.authorization.k8s.io", "clusterroles")
    assert not allowed(cluster, ns, "delete", "", "nodes")


@pytest.mark.parametrize("installed", [("cluster-admin", "emptyDir")], indirect=True, ids=["cluster-admin"])
def test_cluster_admin_binding_lets_charts_install_crds(
    cluster: Cluster, installed: tuple[InstallOptions, list[dict[str, Any]]]
) -> None:
    options, _ = installed
    assert allowed(cluster, options.namespace, "create", "apiextensions.k8s.io", "customresourcedefinitions")
    assert not allowed(cluster, "flotilla-nowhere", "create", "apps", "deployments", "some-app")
