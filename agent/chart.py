"""The agent's own Helm chart (``agent/chart/flotilla-agent``, shipped as package data).

:func:`chart_values` maps ``flotilla-agent manifests``' :class:`InstallOptions` to the chart's
values, so ``bootstrap`` and the tests speak of one set of knobs; the chart renders the objects
:func:`agent.manifests.build_manifests` builds (tests/unit/agent_chart proves it with the real
helm).  The chart's RBAC rules file is generated from ``agent.rbac`` by :func:`rules_document`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agent import rbac
from agent.install_options import InstallOptions

CHART_NAME = "flotilla-agent"
RULES_FILE = "files/rbac-rules.yaml"
_RULES_HEADER = "# Generated from agent/rbac.py by agent.chart.rules_document(); do not edit by hand.\n"


def chart_dir() -> Path:
    return Path(__file__).resolve().parent / "chart" / CHART_NAME


def rules_document() -> str:
    rules = {
        "leastPrivilege": [dict(r) for r in rbac.LEAST_PRIVILEGE_RULES],
        "namespaced": [dict(r) for r in rbac.NAMESPACED_RULES],
        "lease": [dict(r) for r in rbac.LEASE_RULES],
        "crdRead": [dict(r) for r in rbac.CRD_READ_RULES],
    }
    return _RULES_HEADER + yaml.safe_dump(rules, sort_keys=False)


def chart_values(options: InstallOptions) -> dict[str, Any]:
    """The chart values that render what ``build_manifests(options)`` builds (the release namespace
    is ``options.namespace``)."""
    return {
        "cluster": options.cluster,
        "repoUrl": options.repo_url,
        "branch": options.branch or "",
        "tag": options.tag or "",
        "commit": options.commit or "",
        "repoPath": options.repo_path,
        "interval": options.interval,
        "selfUpgradeDeadline": options.self_upgrade_deadline,
        "hubUrl": options.hub_url or "",
        "hubTokenSecret": options.hub_token_secret,
        "gitCredentialsSecret": options.git_credentials_secret or "",
        "createNamespace": options.create_namespace,
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "rbac": options.rbac,
        "targetNamespaces": list(options.target_namespaces),
        "stateStorage": options.state_storage,
        "storageSize": options.storage_size,
        "storageClass": options.storage_class or "",
        "hostPath": options.host_path,
        "resources": options.resources.manifest(),
        "nodeSelector": dict(options.node_selector),
        "tolerations": [dict(t) for t in options.tolerations],
        "verifySignatures": options.verify_signatures,
        "trustedKeysConfigMap": options.trusted_keys_configmap or "",
        "sopsKeySecret": options.sops_key_secret or "",
    }
