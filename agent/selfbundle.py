"""The ``flotilla-system`` bundle: the agent as a bundle of its own fleet repo (pure).

After ``flotilla-agent bootstrap`` the agent's release ``flotilla-agent`` in ``flotilla-system`` is
upgraded by the agent itself from ``bundles/flotilla-system`` in the fleet repo, with the chart in
``charts/flotilla-agent`` (a copy of ``agent/chart/flotilla-agent``).  What differs per site
(cluster name, repo, hub, Secret names, RBAC mode, storage) lives in the ConfigMap
``flotilla-agent-site`` that bootstrap creates in the cluster and the bundle reads through
``valuesFrom``; what the fleet changes by commit (image, resources, interval, placement) is in Git.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent import chart as agent_chart
from agent.install_options import InstallOptions

SELF_BUNDLE = "flotilla-system"
RELEASE = "flotilla-agent"
SITE_CONFIGMAP = "flotilla-agent-site"
SITE_KEY = "values.yaml"
BUNDLE_FILE = f"bundles/{SELF_BUNDLE}/bundle.yaml"
CHART_DIR = f"charts/{agent_chart.CHART_NAME}"
# Chart values that belong to the fleet repo (changed by commit, staged like any bundle).
FLEET_KEYS = (
    "image",
    "imagePullPolicy",
    "interval",
    "selfUpgradeDeadline",
    "resources",
    "nodeSelector",
    "tolerations",
)
_HEADER = """\
# The Flotilla agent itself, managed from this repo (written by `flotilla-agent bootstrap`).
# Change the agent's image, resources or placement here and commit: each targeted cluster's agent
# upgrades its own release (helm.wait is false on purpose: the new pod proves itself through its
# readiness probe, and the old agent rolls back a version that does not; see the format reference).
# Per-site settings come from the ConfigMap flotilla-agent-site in the cluster (valuesFrom).
"""


def site_values(options: InstallOptions) -> dict[str, Any]:
    """The values kept in the cluster's ConfigMap: everything that is not the fleet's."""
    values = agent_chart.chart_values(options)
    site = {k: v for k, v in values.items() if k not in FLEET_KEYS}
    site["createNamespace"] = False  # bootstrap created it: the release lives in it
    return site


def fleet_values(options: InstallOptions) -> dict[str, Any]:
    values = agent_chart.chart_values(options)
    return {k: values[k] for k in FLEET_KEYS if values[k] not in ({}, [])}


def bundle_document(options: InstallOptions, clusters: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "flotilla.dev/v1alpha1",
        "kind": "Bundle",
        "name": SELF_BUNDLE,
        "releaseName": RELEASE,
        "namespace": options.namespace,
        "chart": {"path": f"../../{CHART_DIR}"},
        "values": fleet_values(options),
        "valuesFrom": [{"kind": "ConfigMap", "name": SITE_CONFIGMAP, "key": SITE_KEY}],
        "targets": [{"clusterName": name} for name in clusters],
        "correctDrift": True,
        # No wait: the rollout needs this agent to finish (see agent.selfupgrade).  A short timeout
        # bounds how long a pending revision left by a killed agent blocks its successor.
        "helm": {"wait": False, "timeoutSeconds": 60, "maxHistory": 5},
    }


def render_bundle(document: dict[str, Any]) -> str:
    return _HEADER + yaml.safe_dump(document, sort_keys=False)


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the fleet repo's root
    old: str | None  # None: a new file
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def diff(self) -> str:
        old_lines = [] if self.old is None else self.old.splitlines(keepends=True)
        return "".join(
            difflib.unified_diff(
                old_lines,
                self.new.splitlines(keepends=True),
                "/dev/null" if self.old is None else f"a/{self.path}",
                f"b/{self.path}",
            )
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def bundle_change(repo: Path | None, options: InstallOptions) -> FileChange:
    """The bundle file with this cluster targeted; an existing file only gains the cluster's target
    (its values, fleet-owned, are left as the repo has them)."""
    existing = _read(repo / BUNDLE_FILE) if repo is not None else None
    if existing is None:
        return FileChange(BUNDLE_FILE, None, render_bundle(bundle_document(options, [options.cluster])))
    document = yaml.safe_load(existing)
    if not isinstance(document, dict):
        raise ValueError(f"{BUNDLE_FILE}: not a YAML mapping; fix or remove it first")
    targets = document.get("targets") or []
    if not isinstance(targets, list):
        raise ValueError(f"{BUNDLE_FILE}: targets is not a list")
    if any(isinstance(t, dict) and t.get("clusterName") == options.cluster for t in targets):
        return FileChange(BUNDLE_FILE, existing, existing)
    document["targets"] = [*targets, {"clusterName": options.cluster}]
    return FileChange(BUNDLE_FILE, existing, render_bundle(document))


def chart_changes(repo: Path | None) -> list[FileChange]:
    """The chart's files; a chart already in the repo is the fleet's and is left alone (upgrading it
    is a commit), so only a missing chart is written."""
    source = agent_chart.chart_dir()
    if repo is not None and (repo / CHART_DIR / "Chart.yaml").exists():
        return []
    changes = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        changes.append(FileChange(f"{CHART_DIR}/{relative}", None, path.read_text()))
    return changes
