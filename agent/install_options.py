"""What an agent install is: :class:`InstallOptions`, the fixed names and paths in the agent's pod,
and the name and labels every installed object carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from agent import __version__, placement, readiness

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


def install_labels(options: InstallOptions) -> dict[str, str]:
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


def object_metadata(options: InstallOptions, name: str, *, namespaced: bool = True) -> Manifest:
    metadata: Manifest = {"name": name}
    if namespaced:
        metadata["namespace"] = options.namespace
    metadata["labels"] = install_labels(options)
    return metadata
