"""How ``flotilla-agent plan`` shows a plan: a readable table with merged values, or stable JSON.

Both renderings are pure functions of the plan, and the JSON one sorts keys, so the same repo
always prints the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from agent.fleet.model import ChartSource, ClusterPlan, DesiredRelease, ValuesRef

_SHORT_DIGEST = 12
REDACTED = "<encrypted>"
_SOPS_LEAF = re.compile(r"^ENC\[[A-Z0-9_]+,data:.*\]$", re.S)


def redact_encrypted(values: Any) -> Any:
    """``values`` with every SOPS ciphertext leaf (``ENC[...]``) shown as ``<encrypted>``."""
    if isinstance(values, dict):
        return {key: redact_encrypted(value) for key, value in values.items()}
    if isinstance(values, list):
        return [redact_encrypted(value) for value in values]
    if isinstance(values, str) and _SOPS_LEAF.match(values):
        return REDACTED
    return values


def plan_to_json_data(plan: ClusterPlan) -> dict[str, Any]:
    return {
        "cluster": {"name": plan.cluster.name, "labels": dict(plan.cluster.labels)},
        "releases": [_release_data(release) for release in plan.releases],
    }


def render_json(plan: ClusterPlan) -> str:
    return json.dumps(plan_to_json_data(plan), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render_table(plan: ClusterPlan) -> str:
    labels = " ".join(f"{key}={value}" for key, value in sorted(plan.cluster.labels.items()))
    lines = [f"Cluster {plan.cluster.name}" + (f"  ({labels})" if labels else "")]
    if not plan.releases:
        return "\n".join([*lines, "No bundle targets this cluster."]) + "\n"
    lines.append(f"{len(plan.releases)} release(s), in install order (dependencies first):")
    lines.append("")
    header = ["#", "BUNDLE", "RELEASE", "NAMESPACE", "CHART", "DEPENDS ON", "STATE", "DIGEST"]
    rows = [
        [
            str(position),
            release.bundle,
            release.release,
            release.namespace,
            describe_chart(release.chart),
            ",".join(release.depends_on) or "-",
            "paused" if release.paused else "active",
            release.digest[:_SHORT_DIGEST],
        ]
        for position, release in enumerate(plan.releases, start=1)
    ]
    lines += _table([header, *rows])
    for release in plan.releases:
        lines += ["", f"{release.bundle}: values for {release.namespace}/{release.release}"]
        shown = redact_encrypted(dict(release.values))
        lines += _indented(yaml.safe_dump(shown, sort_keys=True, default_flow_style=False))
        for path in release.encrypted_files:
            lines.append(f"    + {REDACTED} values from {path} (SOPS), decrypted at the edge")
        for ref in release.values_from:
            lines.append(f"    + merged at the edge from {describe_values_ref(ref, release.namespace)}")
    return "\n".join(lines) + "\n"


def describe_chart(chart: ChartSource) -> str:
    if chart.kind == "path":
        return f"{chart.path}@{chart.version} (local {str(chart.content_digest)[:8]})"
    if chart.kind == "repo":
        return f"{chart.repo_url} {chart.name}@{chart.version}"
    return f"{chart.oci_ref}@{chart.version}"


def describe_values_ref(ref: ValuesRef, release_namespace: str) -> str:
    optional = ", optional" if ref.optional else ""
    return f"{ref.kind} {ref.namespace or release_namespace}/{ref.name} key {ref.key}{optional}"


def _release_data(release: DesiredRelease) -> dict[str, Any]:
    chart = {
        "kind": release.chart.kind,
        "path": release.chart.path,
        "repoUrl": release.chart.repo_url,
        "name": release.chart.name,
        "version": release.chart.version,
        "ociRef": release.chart.oci_ref,
        "contentDigest": release.chart.content_digest,
    }
    return {
        "bundle": release.bundle,
        "release": release.release,
        "namespace": release.namespace,
        "chart": {key: value for key, value in chart.items() if value is not None},
        "values": redact_encrypted(release.values),
        "encryptedValuesFiles": list(release.encrypted_files),
        "valuesFrom": [
            {
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "key": ref.key,
                "optional": ref.optional,
            }
            for ref in release.values_from
        ],
        "dependsOn": list(release.depends_on),
        "paused": release.paused,
        "correctDrift": release.correct_drift,
        "options": {
            "timeoutSeconds": release.options.timeout_seconds,
            "wait": release.options.wait,
            "maxHistory": release.options.max_history,
        },
        "digest": release.digest,
    }


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _indented(text: str) -> list[str]:
    return ["    " + line for line in text.rstrip("\n").splitlines()]
