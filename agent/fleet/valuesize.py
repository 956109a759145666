"""Merged values past Helm's limit: a release's values travel in one Secret, which holds 1 MiB.

Merging every bundle for every cluster to measure it would cost bundles x clusters merges. The
size of the merge is at most the sum of its layers, so a bundle whose layers together fit (every
real bundle) is never merged here; only a bundle that could be too big is merged, per cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agent.fleet.digest import canonical_json
from agent.fleet.errors import Problem
from agent.fleet.limits import Limits, size_text
from agent.fleet.merge import merge_values
from agent.fleet.model import Bundle, Cluster, ClusterGroup
from agent.fleet.selectors import matching_targets


def json_size(values: Mapping[str, Any]) -> int:
    return len(canonical_json(values).encode("utf-8"))


def upper_bound(bundle: Bundle) -> int:
    layers = [bundle.values, *(file.values for file in bundle.values_files)]
    layers += [target.values for target in bundle.targets]
    return sum(json_size(layer) for layer in layers)


def merged(bundle: Bundle, cluster: Cluster, groups: Mapping[str, ClusterGroup]) -> dict[str, Any]:
    targets = matching_targets(bundle, cluster, groups)
    return merge_values(
        [bundle.values, *(f.values for f in bundle.values_files), *(t.values for t in targets)]
    )


def too_big(bundle: Bundle, cluster_name: str, size: int, limits: Limits) -> Problem:
    return Problem(
        bundle.origin.file,
        bundle.origin.line,
        f"the merged values of bundle {bundle.name!r} for cluster {cluster_name!r} are {size} bytes, "
        f"which exceeds the limit of {size_text(limits.max_values_bytes)} "
        "(Helm keeps a release in one Secret)",
    )


def check_all(
    bundles: Mapping[str, Bundle],
    clusters: Mapping[str, Cluster],
    groups: Mapping[str, ClusterGroup],
    limits: Limits,
    targeted: Callable[[str], frozenset[str]],
) -> list[Problem]:
    """One problem per bundle whose merged values pass the limit on some cluster (the first one)."""
    problems = []
    for name, bundle in bundles.items():
        if upper_bound(bundle) <= limits.max_values_bytes:
            continue
        for cluster_name in sorted(targeted(name)):
            size = json_size(merged(bundle, clusters[cluster_name], groups))
            if size > limits.max_values_bytes:
                problems.append(too_big(bundle, cluster_name, size, limits))
                break
    return problems
