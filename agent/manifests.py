"""``flotilla-agent manifests``: the Kubernetes objects that install the agent in a cluster.

:func:`build_manifests` is a pure function from :class:`InstallOptions` to plain dicts and
:func:`render_manifests` turns them into one multi-document YAML stream for ``kubectl apply -f -``.
Secrets are only *referenced*: the Git credentials and the hub token never pass through this
command, so its output can be committed or shared.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from agent import __version__, placement, readiness
from agent import rbac as rbac_modes

RbacMode = Literal["cluster-admin", "least-privilege", "namespaced"]
StateStorage = Literal["pvc", "emptyDir", "hostPath"]
PullPolicy = Literal["IfNotPresent", "Always", "Never"]
Manifest = dict[str, Any]

DEFAULT_NAMESPACE = "flotilla-system"
DEFAULT_IMAGE = f"ghcr.io/flotilla/flotilla-agent:{__version__}"
DEFAULT_HUB_TOKEN_SECRET = "flotilla-hub-token"  # noqa: S105 (names of Secrets and files, not values)
NAME = "flotilla-agent"
AGENT_UID = 10001
STATE_DIR = "/var/lib/flotilla"
GIT_CREDENTIALS_DIR = "/etc/flotilla/git"
GIT_CREDENTIALS_KEY = "credentials.yaml"
HUB_TOKEN_DIR = "/etc/flotilla/hub"  # noqa: S105
HUB_TOKEN_KEY = "token"  # noqa: S105
TRUSTED_KEYS_DIR = "/etc/flotilla/trust"
TRUSTED_KEYS_KEY = "trusted-keys"
# Readable by the agent through the pod's fsGroup, by nobody else.
SECRET_FILE_MODE = 0o440

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


@dataclass(frozen=True)
class InstallOptions:
    """Everything the install manifests depend on; the defaults suit a small edge node."""

    cluster: str
    repo_url: str
    hub_url: str | None = None
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    repo_path: str = "."
    interval: int = 60
    # How long a new agent build has to complete a pass before the old agent rolls it back.
    self_upgrade_deadline: int = readiness.PROGRESS_DEADLINE_SECONDS
    namespace: str = DEFAULT_NAMESPACE
    image: str = DEFAULT_IMAGE
    image_pull_policy: PullPolicy = "IfNotPresent"
    rbac: RbacMode = "cluster-admin"
    state_storage: StateStorage = "pvc"
    storage_size: str = "1Gi"
    storage_class: str | None = None
    host_path: str = STATE_DIR
    git_credentials_secret: str | None = None
    hub_token_secret: str = DEFAULT_HUB_TOKEN_SECRET
    target_namespaces: tuple[str, ...] = ()  # --rbac namespaced: where releases may go
    resources: placement.Resources = placement.DEFAULT_RESOURCES
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Manifest, ...] = ()
    # False when the Namespace exists already (bootstrap creates it before helm: the release lives there).
    create_namespace: bool = True
    verify_signatures: Literal["off", "ssh", "gpg"] = "off"
    trusted_keys_configmap: str | None = None  # public keys: a ConfigMap, not a Secret
    sops_key_secret: str | None = None  # a Secret in the agent's namespace holding the site's age key


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
            labels=_labels(options),
        )
    lease = (  # cluster-admin holds these rights already
        []
        if options.rbac == "cluster-admin"
        else rbac_modes.role_and_binding(
            f"{NAME}-lease",
            options.namespace,
            [*rbac_modes.LEASE_RULES, *rbac_modes.secret_read_rules(options.sops_key_secret)],
            {"name": NAME, "namespace": options.namespace},
            _labels(options),
        )
    )
    storage = [_state_claim(options)] if options.state_storage == "pvc" else []
    namespace = [_namespace(options)] if options.create_namespace else []
    return [*namespace, _service_account(options), *rbac, *lease, *storage, _deployment(options)]


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


def _labels(options: InstallOptions) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": NAME,
        "app.kubernetes.io/part-of": "flotilla",
        "app.kubernetes.io/version": __version__,
        "flotilla.dev/cluster": _label_value(options.cluster),
    }


def _label_value(text: str) -> str:
    """A label value derived from free text (label values are limited to 63 safe characters)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return cleaned.strip("-_.")


def _metadata(options: InstallOptions, name: str, *, namespaced: bool = True) -> Manifest:
    metadata: Manifest = {"name": name}
    if namespaced:
        metadata["namespace"] = options.namespace
    metadata["labels"] = _labels(options)
    return metadata


def _cluster_scoped_name(options: InstallOptions) -> str:
    """Cluster-wide RBAC objects carry the namespace so two installs cannot collide."""
    return f"{NAME}-{options.namespace}"


def _namespace(options: InstallOptions) -> Manifest:
    metadata = _metadata(options, options.namespace, namespaced=False)
    if options.state_storage != "hostPath":
        # The agent's pod meets the "restricted" Pod Security Standard; hostPath volumes do not.
        metadata["labels"] = {
            **metadata["labels"],
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def _service_account(options: InstallOptions) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _metadata(options, NAME)}


def _binding(options: InstallOptions, role: str) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(options, _cluster_scoped_name(options), namespaced=False),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": options.namespace}],
    }


def _cluster_admin_rbac(options: InstallOptions) -> list[Manifest]:
    return [_binding(options, "cluster-admin")]


def _least_privilege_rbac(options: InstallOptions) -> list[Manifest]:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(options, _cluster_scoped_name(options), namespaced=False),
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
        "metadata": _metadata(options, f"{NAME}-state"),
        "spec": spec,
    }


def _env(options: InstallOptions) -> list[Manifest]:
    values: list[tuple[str, str | None]] = [
        ("FLOTILLA_CLUSTER", options.cluster),
        ("FLOTILLA_REPO_URL", options.repo_url),
        ("FLOTILLA_BRANCH", options.branch),
        ("FLOTILLA_TAG", options.tag),
        ("FLOTILLA_COMMIT", options.commit),
        ("FLOTILLA_REPO_PATH", options.repo_path),
        ("FLOTILLA_INTERVAL", str(options.interval)),
        ("FLOTILLA_STATE_DIR", STATE_DIR),
        ("FLOTILLA_IMAGE", options.image),  # the agent's own image: its self-upgrade watch compares it
        ("FLOTILLA_SELF_UPGRADE_DEADLINE", str(options.self_upgrade_deadline)),
        ("FLOTILLA_HUB_URL", options.hub_url),
        (
            "FLOTILLA_NAMESPACES",
            ",".join(options.target_namespaces) if options.rbac == "namespaced" else None,
        ),
    ]
    if options.hub_url:
        values.append(("FLOTILLA_HUB_TOKEN_FILE", f"{HUB_TOKEN_DIR}/{HUB_TOKEN_KEY}"))
    if options.git_credentials_secret:
        values.append(("FLOTILLA_CREDENTIALS_FILE", f"{GIT_CREDENTIALS_DIR}/{GIT_CREDENTIALS_KEY}"))
    if options.verify_signatures != "off":
        values.append(("FLOTILLA_VERIFY_SIGNATURES", options.verify_signatures))
        values.append(("FLOTILLA_TRUSTED_KEYS", f"{TRUSTED_KEYS_DIR}/{TRUSTED_KEYS_KEY}"))
    if options.sops_key_secret:
        values.append(("FLOTILLA_SOPS_KEY_SECRET", f"{options.namespace}/{options.sops_key_secret}"))
    return [{"name": name, "value": value} for name, value in values if value is not None]


def _volumes(options: InstallOptions) -> tuple[list[Manifest], list[Manifest]]:
    """(pod volumes, agent container mounts)."""
    if options.state_storage == "pvc":
        state: Manifest = {"persistentVolumeClaim": {"claimName": f"{NAME}-state"}}
    elif options.state_storage == "hostPath":
        state = {"hostPath": {"path": options.host_path, "type": "DirectoryOrCreate"}}
    else:
        state = {"emptyDir": {}}
    volumes: list[Manifest] = [{"name": "state", **state}, {"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [
        {"name": "state", "mountPath": STATE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (a private emptyDir, not a shared /tmp)
    ]
    secrets = [(options.git_credentials_secret, "git-credentials", GIT_CREDENTIALS_DIR)]
    if options.hub_url:
        secrets.append((options.hub_token_secret, "hub-token", HUB_TOKEN_DIR))
    for secret_name, volume_name, mount_path in secrets:
        if secret_name:
            volumes.append(
                {"name": volume_name, "secret": {"secretName": secret_name, "defaultMode": SECRET_FILE_MODE}}
            )
            mounts.append({"name": volume_name, "mountPath": mount_path, "readOnly": True})
    if options.verify_signatures != "off" and options.trusted_keys_configmap:
        volumes.append({"name": "trusted-keys", "configMap": {"name": options.trusted_keys_configmap}})
        mounts.append({"name": "trusted-keys", "mountPath": TRUSTED_KEYS_DIR, "readOnly": True})
    return volumes, mounts


def _container_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": AGENT_UID,
        "runAsGroup": AGENT_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _state_dir_owner(options: InstallOptions) -> Manifest:
    """Init container for hostPath only: fsGroup does not apply to hostPath volumes, so the directory
    the kubelet creates is root's.  It gets CHOWN and nothing else, and runs before the agent."""
    return {
        "name": "state-dir-owner",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["chown", f"{AGENT_UID}:{AGENT_UID}", STATE_DIR],
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "32Mi"},
        },
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}],
    }


def _same_node_as_agent(selector: Manifest) -> Manifest:
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": "kubernetes.io/hostname"}
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def _deployment(options: InstallOptions) -> Manifest:
    volumes, mounts = _volumes(options)
    selector = {"app.kubernetes.io/name": NAME}
    container: Manifest = {
        "name": "agent",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "args": ["run"],
        "env": _env(options),
        "resources": options.resources.manifest(),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        **readiness.probe_manifest(),
    }
    pod_spec: Manifest = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,  # no Service env vars: the agent reads only its own settings
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": AGENT_UID,
            "runAsGroup": AGENT_UID,
            "fsGroup": AGENT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": volumes,
    }
    if options.state_storage == "pvc":
        # The state claim is ReadWriteOnce: the surge pod must start on the old pod's node.  (A pod
        # matching its own required affinity term schedules anywhere when no such pod exists yet.)
        pod_spec["affinity"] = _same_node_as_agent(selector)
    if options.node_selector:
        pod_spec["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in options.tolerations]
    if options.state_storage == "hostPath":
        del pod_spec["securityContext"]["runAsNonRoot"]  # the init container must be root to chown
        pod_spec["initContainers"] = [_state_dir_owner(options)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(options, NAME),
        "spec": {
            "replicas": 1,
            # The old agent keeps running until the new one has completed a pass (its readiness
            # probe), so a broken new version is rolled back by the old one (agent.selfupgrade).
            # Two agents never act at once: the Lease (agent.lease) lets one of them change things.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": options.self_upgrade_deadline,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": _labels(options)}, "spec": pod_spec},
        },
    }


# --------------------------------------------------------------------------------------------------
# Command line


def _checked(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {what}")
        return value

    return check


def _non_empty(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise argparse.ArgumentTypeError(f"{value!r} is not an absolute path on the node")
    return value


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of seconds") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


def add_manifests_command(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``manifests`` on the ``flotilla-agent`` sub-command parsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "manifests",
        help="print the Kubernetes manifests that install the agent in a cluster",
        description="Print the Namespace, ServiceAccount, RBAC, storage and Deployment that run the "
        "agent in a cluster, as YAML for `kubectl apply -f -`.  Secrets are referenced, never inlined.",
    )
    add_install_arguments(parser)
    parser.set_defaults(handler=_run_manifests)
    return parser


def add_install_arguments(parser: argparse.ArgumentParser) -> None:
    """The install knobs, shared by ``manifests`` and ``bootstrap``."""
    dns_label = _checked(_DNS_LABEL, "Kubernetes name (lower-case letters, digits and '-', at most 63)")
    secret_name = _checked(_DNS_SUBDOMAIN, "Secret name")
    parser.add_argument(
        "--cluster", type=_non_empty, required=True, help="this cluster's name in the fleet repo"
    )
    parser.add_argument(
        "--repo",
        "--repo-url",
        dest="repo",
        type=_non_empty,
        required=True,
        metavar="URL",
        help="the fleet repo's Git URL",
    )
    parser.add_argument("--hub", metavar="URL", help="the hub's URL (omit to run without a hub)")
    ref = parser.add_mutually_exclusive_group()
    ref.add_argument("--branch", help="branch to follow (default: main)")
    ref.add_argument("--tag", help="pin to a tag")
    ref.add_argument("--commit", help="pin to a commit")
    parser.add_argument("--path", default=".", help="the fleet repo's directory inside the Git repo")
    parser.add_argument("--interval", type=_positive_int, default=60, help="seconds between passes")
    parser.add_argument(
        "--self-upgrade-deadline",
        metavar="SECONDS",
        type=_positive_int,
        default=readiness.PROGRESS_DEADLINE_SECONDS,
        help="how long a new agent version has to complete a pass before the running agent rolls it "
        "back (also the Deployment's progressDeadlineSeconds; default %(default)s)",
    )
    parser.add_argument("--namespace", type=dns_label, default=DEFAULT_NAMESPACE)
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"agent image (default {DEFAULT_IMAGE})")
    parser.add_argument(
        "--image-pull-policy", choices=["IfNotPresent", "Always", "Never"], default="IfNotPresent"
    )
    parser.add_argument(
        "--rbac",
        choices=["cluster-admin", "least-privilege", "namespaced"],
        default="cluster-admin",
        help="cluster-admin (default: charts can create anything), least-privilege (a ClusterRole "
        "limited to common workload, config, service and RBAC kinds) or namespaced (those kinds only "
        "in --target-namespaces; nothing elsewhere)",
    )
    parser.add_argument(
        "--target-namespaces",
        type=_namespace_list,
        default=(),
        metavar="NS[,NS...]",
        help="with --rbac namespaced: the namespaces the fleet repo's bundles for this cluster use",
    )
    parser.add_argument(
        "--state-storage",
        choices=["pvc", "emptyDir", "hostPath"],
        default="pvc",
        help="where the state directory lives: a PersistentVolumeClaim (default), a hostPath directory "
        "on the node (no storage class needed) or an emptyDir (lost with the pod: tests only)",
    )
    parser.add_argument("--storage-size", type=_checked(_QUANTITY, "storage quantity"), default="1Gi")
    parser.add_argument(
        "--storage-class", type=secret_name, help="StorageClass for the PVC (default: cluster's)"
    )
    parser.add_argument(
        "--host-path",
        type=_absolute_path,
        default=STATE_DIR,
        help=f"node directory for hostPath (default {STATE_DIR})",
    )
    parser.add_argument(
        "--git-credentials-secret",
        type=secret_name,
        metavar="NAME",
        help=f"Secret with key {GIT_CREDENTIALS_KEY} (the agent's --credentials-file); omit if public",
    )
    parser.add_argument(
        "--hub-token-secret",
        type=secret_name,
        metavar="NAME",
        default=DEFAULT_HUB_TOKEN_SECRET,
        help=f"Secret with key {HUB_TOKEN_KEY}: the cluster's hub token (default {DEFAULT_HUB_TOKEN_SECRET})",
    )
    placement.add_placement_arguments(parser)
    parser.add_argument(
        "--verify-signatures",
        choices=["off", "ssh", "gpg"],
        default="off",
        help="apply only commits signed by a key in --trusted-keys-configmap (default off)",
    )
    parser.add_argument(
        "--trusted-keys-configmap",
        type=secret_name,
        metavar="NAME",
        help=f"ConfigMap with key {TRUSTED_KEYS_KEY}: an SSH allowed_signers file or an armored keyring",
    )
    parser.add_argument(
        "--sops-key-secret",
        type=secret_name,
        metavar="NAME",
        help="Secret (in --namespace) with key age.agekey: the site's age key for SOPS-encrypted values",
    )


def options_from_args(args: argparse.Namespace) -> InstallOptions:
    return InstallOptions(
        cluster=args.cluster,
        repo_url=args.repo,
        hub_url=args.hub,
        branch=args.branch,
        tag=args.tag,
        commit=args.commit,
        repo_path=args.path,
        interval=args.interval,
        self_upgrade_deadline=args.self_upgrade_deadline,
        namespace=args.namespace,
        image=args.image,
        image_pull_policy=args.image_pull_policy,
        rbac=args.rbac,
        state_storage=args.state_storage,
        storage_size=args.storage_size,
        storage_class=args.storage_class,
        host_path=args.host_path,
        git_credentials_secret=args.git_credentials_secret,
        hub_token_secret=args.hub_token_secret,
        target_namespaces=args.target_namespaces,
        resources=placement.resources_from_args(args),
        node_selector=args.node_selector,
        tolerations=tuple(args.toleration),
        verify_signatures=args.verify_signatures,
        trusted_keys_configmap=args.trusted_keys_configmap,
        sops_key_secret=args.sops_key_secret,
    )


def _namespace_list(value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    bad = [n for n in names if not _DNS_LABEL.match(n)]
    if not names:
        raise argparse.ArgumentTypeError(f"{value!r} names no namespace")
    if bad:
        raise argparse.ArgumentTypeError(f"{', '.join(bad)} is not a namespace name")
    return names


def _run_manifests(args: argparse.Namespace) -> int:
    if args.verify_signatures != "off" and not args.trusted_keys_configmap:
        print(
            f"flotilla-agent manifests: --verify-signatures {args.verify_signatures} needs "
            "--trusted-keys-configmap NAME",
            file=sys.stderr,
        )
        return 2
    try:
        text = render_manifests(options_from_args(args))
    except ValueError as error:
        print(f"flotilla-agent manifests: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0
