"""The namespaced RBAC mode of ``flotilla-agent manifests`` (pure): write rights only where the fleet
repo may put this cluster's releases.

``--rbac namespaced --target-namespaces a,b`` gives the agent's ServiceAccount, in each target
namespace, a Role over the kinds ordinary application charts ship plus Helm's release storage (the
Secrets Helm keeps in the release's namespace) and nothing anywhere else: no Secret outside those
namespaces can be read, no pod created.  Cluster-wide it may only *read* CustomResourceDefinitions
(so it can tell which custom kinds exist).  The namespaces themselves are created by these
manifests, because the agent may not create namespaces (it runs helm without --create-namespace).
Every mode but cluster-admin also gets a Role in the agent's namespace for its own Lease
(``agent.lease``) and, when there is one, the Secret with the site's SOPS age key.

A chart that writes into any other namespace fails with Helm's own "forbidden" error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Manifest = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
# What ``--rbac least-privilege`` grants: the kinds ordinary application charts ship, Helm's release
# storage (Secrets in the release namespace) and what the health checks read.  No CRDs, webhooks,
# APIServices, StorageClasses, PriorityClasses, and no ``escalate``/``bind`` on RBAC objects.
_ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
_READ_VERBS = ["get", "list", "watch"]
LEAST_PRIVILEGE_RULES: tuple[Manifest, ...] = (
    {
        "apiGroups": [""],
        "resources": [
            "namespaces",
            "configmaps",
            "secrets",
            "services",
            "serviceaccounts",
            "persistentvolumeclaims",
            "pods",
        ],
        "verbs": _ALL_VERBS,
    },
    {"apiGroups": [""], "resources": ["events", "endpoints", "pods/log"], "verbs": _READ_VERBS},
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
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
        "verbs": _ALL_VERBS,
    },
)


_CLUSTER_SCOPED = frozenset({"namespaces", "clusterroles", "clusterrolebindings"})
_READ_ONLY_WHEN_NAMESPACED = frozenset({"pods"})  # charts ship workloads, not bare pods


def _namespaced(rules: tuple[Manifest, ...]) -> tuple[Manifest, ...]:
    """The least-privilege rules for a Role: no cluster-scoped kinds, bare pods only read."""
    result: list[Manifest] = []
    for rule in rules:
        resources = [r for r in rule["resources"] if r not in _CLUSTER_SCOPED]
        writable = [r for r in resources if r not in _READ_ONLY_WHEN_NAMESPACED]
        read_only = [r for r in resources if r in _READ_ONLY_WHEN_NAMESPACED]
        if writable:
            result.append({**rule, "resources": writable})
        if read_only:
            result.append({"apiGroups": rule["apiGroups"], "resources": read_only, "verbs": _READ_VERBS})
    return tuple(result)


# Namespaced kinds only: a Role cannot grant cluster-scoped ones.
NAMESPACED_RULES: tuple[Manifest, ...] = _namespaced(LEAST_PRIVILEGE_RULES)
LEASE_RULES: tuple[Manifest, ...] = (
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
)
CRD_READ_RULES: tuple[Manifest, ...] = (
    {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": _READ_VERBS},
)


def secret_read_rules(name: str | None) -> list[Manifest]:
    """Read of one named Secret (the site's SOPS age key) in the agent's namespace, when there is one."""
    return (
        [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": ["get"]}]
        if name
        else []
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
