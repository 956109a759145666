"""The planner: (fleet repo, cluster name) → the releases that cluster should run. Pure, no I/O.

Merge order for a release's values, later winning: the bundle's ``values`` → each of its
``valuesFiles`` in order → the ``values`` of every matching target in file order. ``valuesFrom``
is merged last by the agent at the edge, so it is carried as references, not values.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping, Set

from agent.fleet.digest import release_digest
from agent.fleet.errors import UnknownClusterError
from agent.fleet.merge import merge_values
from agent.fleet.model import Bundle, Cluster, ClusterGroup, ClusterPlan, DesiredRelease, FleetRepo
from agent.fleet.selectors import matching_targets


def plan_cluster(repo: FleetRepo, cluster_name: str) -> ClusterPlan:
    """Every release ``cluster_name`` should run, dependencies first, ties in bundle-name order."""
    cluster = repo.clusters.get(cluster_name)
    if cluster is None:
        raise UnknownClusterError(cluster_name, repo.clusters)
    releases = {}
    for bundle in repo.bundles.values():
        release = desired_release(bundle, cluster, repo.groups)
        if release is not None:
            releases[bundle.name] = release
    planned = {
        name: _keep_planned_dependencies(release, releases.keys()) for name, release in releases.items()
    }
    return ClusterPlan(cluster=cluster, releases=dependency_order(planned))


def desired_release(
    bundle: Bundle, cluster: Cluster, groups: Mapping[str, ClusterGroup]
) -> DesiredRelease | None:
    """The release ``bundle`` gives ``cluster``, or None when no target matches it."""
    targets = matching_targets(bundle, cluster, groups)
    if not targets:
        return None
    values = merge_values(
        [
            bundle.values,
            *(file.values for file in bundle.values_files),
            *(target.values for target in targets),
        ]
    )
    return DesiredRelease(
        bundle=bundle.name,
        release=bundle.release,
        namespace=bundle.namespace,
        chart=bundle.chart,
        values=values,
        values_from=bundle.values_from,
        depends_on=tuple(sorted(dependency.bundle for dependency in bundle.depends_on)),
        paused=bundle.paused,
        correct_drift=bundle.correct_drift,
        options=bundle.options,
        encrypted_files=tuple(file.path for file in bundle.values_files if file.encrypted),
        digest=release_digest(
            release=bundle.release,
            namespace=bundle.namespace,
            chart=bundle.chart,
            values=values,
            values_from=bundle.values_from,
            options=bundle.options,
        ),
    )


def dependency_order(releases: Mapping[str, DesiredRelease]) -> tuple[DesiredRelease, ...]:
    """Kahn's topological sort: each release after its dependencies, ready ones by bundle name.

    A valid repo has no cycles; should one slip through, its members are appended in name order
    rather than dropped, so nothing silently disappears from a plan.
    """
    waiting_on = {name: set(release.depends_on) & releases.keys() for name, release in releases.items()}
    dependents: dict[str, list[str]] = {name: [] for name in releases}
    for name, dependencies in waiting_on.items():
        for dependency in dependencies:
            dependents[dependency].append(name)
    ready = [name for name, dependencies in waiting_on.items() if not dependencies]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        ordered.append(name)
        for dependent in dependents[name]:
            waiting_on[dependent].discard(name)
            if not waiting_on[dependent]:
                heapq.heappush(ready, dependent)
    ordered += sorted(releases.keys() - set(ordered))
    return tuple(releases[name] for name in ordered)


def _keep_planned_dependencies(release: DesiredRelease, planned: Set[str]) -> DesiredRelease:
    """Drop dependencies not planned for this cluster (validation reports them as errors)."""
    kept = tuple(name for name in release.depends_on if name in planned)
    return release if kept == release.depends_on else dataclasses.replace(release, depends_on=kept)
