"""The ``flotilla-agent manifests`` command line, and the install arguments it shares with
``flotilla-agent bootstrap`` (:func:`add_install_arguments`, :func:`options_from_args`).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from agent import placement, readiness
from agent.install_options import (
    DEFAULT_HUB_TOKEN_SECRET,
    DEFAULT_IMAGE,
    DEFAULT_NAMESPACE,
    GIT_CREDENTIALS_KEY,
    HUB_TOKEN_KEY,
    STATE_DIR,
    TRUSTED_KEYS_KEY,
    InstallOptions,
)
from agent.manifests import render_manifests

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


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
