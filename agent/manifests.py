"""``flotilla-agent manifests``: the Kubernetes objects that install the agent in a cluster.

:func:`build_manifests` is a pure function from :class:`InstallOptions` to plain dicts and
:func:`render_manifests` turns them into one multi-document YAML stream for ``kubectl apply -f -``.
Secrets are only *referenced*: the Git credentials and the hub token never pass through this
command, so its output can be committed or shared.

The options and the names they fix live in :mod:`agent.install_options`, the agent's Deployment in
:mod:`agent.deployment_manifest` and the command line in :mod:`agent.manifests_cli`.
"""

from __future__ import annotations

from typing import Any

import yaml

from agent import __version__
from agent import rbac as rbac_modes
from agent.deployment_manifest import deployment_manifest
from agent.install_options import (
    GIT_CREDENTIALS_DIR,
    GIT_CREDENTIALS_KEY,
    HUB_TOKEN_KEY,
    NAME,
    TRUSTED_KEYS_KEY,
    InstallOptions,
    Manifest,
    install_labels,
    object_metadata,
)

LEAST_PRIVILEGE_RULES = rbac_modes.LEAST_PRIVILEGE_RULES


def build_manifests(options: InstallOptions) -> list[Manifest]:
    """The objects, in the order ``kubectl apply`` should create them."""
    if options.rbac == "namespaced" and not options.target_namespaces:
        raise ValueError("--rbac namespaced needs --target-namespaces")
    if options.rbac == "cluster-admin":
        rbac = _cluster_admin_rbac(options)
    elif options.rbac == "least-privilege":
        rbac = _least_privilege_rbac(options)
    else:
        rbac = rbac_modes.namespaced_rbac(
            name=NAME,
            agent_namespace=options.namespace,
            service_account=NAME,
            target_namespaces=options.target_namespaces,
            labels=install_labels(options),
        )
    lease = (  # cluster-admin holds these rights already
        []
        if options.rbac == "cluster-admin"
        else rbac_modes.role_and_binding(
            f"{NAME}-lease",
            options.namespace,
            [*rbac_modes.LEASE_RULES, *rbac_modes.secret_read_rules(options.sops_key_secret)],
            {"name": NAME, "namespace": options.namespace},
            install_labels(options),
        )
    )
    storage = [_state_claim(options)] if options.state_storage == "pvc" else []
    namespace = [_namespace(options)] if options.create_namespace else []
    return [*namespace, _service_account(options), *rbac, *lease, *storage, deployment_manifest(options)]


class _PlainDumper(yaml.SafeDumper):
    """Writes shared sub-objects out in full instead of as ``&id001`` anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_manifests(options: InstallOptions) -> str:
    documents = yaml.dump_all(
        build_manifests(options), Dumper=_PlainDumper, sort_keys=False, default_flow_style=False
    )
    return _header(options) + documents


def _header(options: InstallOptions) -> str:
    """Comment lines telling the operator which Secrets to create before applying."""
    ns = options.namespace
    lines = [f"# flotilla-agent {__version__} for cluster {options.cluster!r}; apply with kubectl apply -f -"]
    trust = options.verify_signatures != "off" and options.trusted_keys_configmap
    if options.hub_url or options.git_credentials_secret or trust or options.sops_key_secret:
        lines.append(f"# The agent's pod starts once these Secrets exist in namespace {ns}:")
    if options.hub_url:
        lines.append(
            f"#   kubectl -n {ns} create secret generic {options.hub_token_secret} "
            f"--from-file={HUB_TOKEN_KEY}=./hub-token"
        )
    if options.git_credentials_secret:
        lines.append(
            f"#   kubectl -n {ns} create secret generic {options.git_credentials_secret} "
            f"--from-file={GIT_CREDENTIALS_KEY}=./git-credentials.yaml  (plus any SSH key files it names, "
            f"mounted under {GIT_CREDENTIALS_DIR}/)"
        )
    if trust:
        local = "allowed_signers" if options.verify_signatures == "ssh" else "trusted.asc"
        lines.append(
            f"#   kubectl -n {ns} create configmap {options.trusted_keys_configmap} "
            f"--from-file={TRUSTED_KEYS_KEY}=./{local}"
            "  (the public keys whose commits the agent applies)"
        )
    if options.sops_key_secret:
        lines.append(
            f"#   kubectl -n {ns} create secret generic {options.sops_key_secret} "
            "--from-file=age.agekey=./site.agekey  (this site's age key for SOPS-encrypted values)"
        )
    return "\n".join(lines) + "\n"


def _cluster_scoped_name(options: InstallOptions) -> str:
    """Cluster-wide RBAC objects carry the namespace so two installs cannot collide."""
    return f"{NAME}-{options.namespace}"


def _namespace(options: InstallOptions) -> Manifest:
    metadata = object_metadata(options, options.namespace, namespaced=False)
    if options.state_storage != "hostPath":
        # The agent's pod meets the "restricted" Pod Security Standard; hostPath volumes do not.
        metadata["labels"] = {
            **metadata["labels"],
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _service_account(options: InstallOptions) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": object_metadata(options, NAME)}


def _binding(options: InstallOptions, role: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": object_metadata(options, _cluster_scoped_name(options), namespaced=False),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": options.namespace}],
    }


def _cluster_admin_rbac(options: InstallOptions) -> list[Manifest]:
    return [_binding(options, "cluster-admin")]


def _least_privilege_rbac(options: InstallOptions) -> list[Manifest]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": object_metadata(options, _cluster_scoped_name(options), namespaced=False),
        "rules": [dict(rule) for rule in LEAST_PRIVILEGE_RULES],
    }
    return [role, _binding(options, _cluster_scoped_name(options))]


def _state_claim(options: InstallOptions) -> Manifest:
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": options.storage_size}},
    }
    if options.storage_class:
        spec["storageClassName"] = options.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_metadata(options, f"{NAME}-state"),
        "spec": spec,
    }
