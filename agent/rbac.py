"""The namespaced RBAC mode of ``flotilla-agent manifests`` (pure): write rights only where the fleet
repo may put this cluster's releases.

``--rbac namespaced --target-namespaces a,b`` gives the agent's ServiceAccount, in each target
namespace, a Role over the kinds ordinary application charts ship plus Helm's release storage (the
Secrets Helm keeps in the release's namespace) and nothing anywhere else: no Secret outside those
namespaces can be read, no pod created.  Cluster-wide it may only *read* CustomResourceDefinitions
(so it can tell which custom kinds exist).  The namespaces themselves are created by these
manifests, because the agent may not create namespaces (it runs helm without --create-namespace).
Every mode also gets the Role for the agent's own Lease in its namespace (``agent.lease``).

A chart that writes into any other namespace fails with Helm's own "forbidden" error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Manifest = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
_ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
_READ_VERBS = ["get", "list", "watch"]

# Namespaced kinds only: a Role cannot grant cluster-scoped ones.
NAMESPACED_RULES: tuple[Manifest, ...] = (
    {
        "apiGroups": [""],
        "resources": ["configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims"],
        "verbs": _ALL_VERBS,
    },
    {"apiGroups": [""], "resources": ["pods", "events", "endpoints", "pods/log"], "verbs": _READ_VERBS},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "verbs": _ALL_VERBS,
    },
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": _ALL_VERBS},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": _ALL_VERBS},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": _ALL_VERBS},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": _ALL_VERBS},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _READ_VERBS},
    {"apiGroups": [RBAC_GROUP], "resources": ["roles", "rolebindings"], "verbs": _ALL_VERBS},
)
LEASE_RULES: tuple[Manifest, ...] = (
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
)
CRD_READ_RULES: tuple[Manifest, ...] = (
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": _READ_VERBS},
)


def role_and_binding(
    name: str,
    namespace: str,
    rules: Sequence[Manifest],
    subject: Mapping[str, str],
    labels: Mapping[str, str],
) -> list[Manifest]:
    """A Role in ``namespace`` with ``rules`` and its RoleBinding to the ServiceAccount ``subject``."""
    metadata = {"name": name, "namespace": namespace, "labels": dict(labels)}
    return [
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "Role",
            "metadata": metadata,
            "rules": [dict(r) for r in rules],
        },
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "RoleBinding",
            "metadata": dict(metadata),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", **subject}],
        },
    ]


def namespaced_rbac(
    *,
    name: str,
    agent_namespace: str,
    service_account: str,
    target_namespaces: Sequence[str],
    labels: Mapping[str, str],
) -> list[Manifest]:
    """Namespaces, per-namespace Roles and a read-only CRD ClusterRole for ``--rbac namespaced``."""
    subject = {"name": service_account, "namespace": agent_namespace}
    objects: list[Manifest] = []
    for target in target_namespaces:
        if target != agent_namespace:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": target, "labels": dict(labels)},
                }
            )
        objects += role_and_binding(name, target, NAMESPACED_RULES, subject, labels)
    cluster_name = f"{name}-{agent_namespace}-crd-reader"
    objects += [
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_name, "labels": dict(labels)},
            "rules": [dict(r) for r in CRD_READ_RULES],
        },
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_name, "labels": dict(labels)},
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": cluster_name},
            "subjects": [{"kind": "ServiceAccount", **subject}],
        },
    ]
    return objects
