"""``--rbac namespaced``: write rights only in the target namespaces, nothing cluster-wide but CRD reads."""

from __future__ import annotations

import pytest

from agent.install_options import InstallOptions
from agent.manifests import build_manifests


def namespaced(*targets: str) -> list[dict]:
    return build_manifests(
        InstallOptions(
            cluster="c", repo_url="r", namespace="agent", rbac="namespaced", target_namespaces=targets
        )
    )


def test_each_target_namespace_gets_the_namespace_a_role_and_a_binding_and_nothing_else_is_writable() -> None:
    objects = namespaced("shop", "cache")
    roles = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Role"}
    assert roles == {
        ("shop", "flotilla-agent"),
        ("cache", "flotilla-agent"),
        ("agent", "flotilla-agent-lease"),
    }
    assert {"shop", "cache"} <= {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    cluster_roles = [o for o in objects if o["kind"] == "ClusterRole"]
    assert len(cluster_roles) == 1
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in cluster_roles[0]["rules"])
    assert cluster_roles[0]["rules"][0]["resources"] == ["customresourcedefinitions"]
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "flotilla-agent", "namespace": "agent"}
        ]


def test_the_role_cannot_create_pods_or_touch_cluster_scoped_kinds() -> None:
    role = next(o for o in namespaced("shop") if o["kind"] == "Role" and o["metadata"]["namespace"] == "shop")
    writable = {res for rule in role["rules"] if "create" in rule["verbs"] for res in rule["resources"]}
    assert "pods" not in writable
    assert {"secrets", "configmaps", "deployments"} <= writable  # Helm's storage and chart kinds
    assert not writable & {"namespaces", "clusterroles", "clusterrolebindings"}


def test_the_agent_is_told_its_namespaces() -> None:
    deployment = next(o for o in namespaced("shop", "cache") if o["kind"] == "Deployment")
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FLOTILLA_NAMESPACES"] == "shop,cache"


def test_namespaced_mode_without_target_namespaces_is_refused() -> None:
    with pytest.raises(ValueError, match="--target-namespaces"):
        namespaced()
