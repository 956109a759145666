"""What one cluster may apply from a fleet repo that has problems: failure isolated per bundle.

The rule (documented in fleet-repo-example/README.md, "Failure isolation"):

- a problem in a bundle's files (its bundle.yaml, values files, local chart) blocks that bundle,
  and every bundle that dependsOn it, on every cluster (its targets are unknown);
- a problem in a group file blocks the bundles that use the group;
- a problem in a cluster file blocks that cluster: its agent applies and prunes nothing;
- a problem that concerns one cluster (two bundles installing one release there, a dependency not
  targeted there, merged values too big) blocks the bundles concerned on that cluster only;
- a problem with the repo as a whole (over the read budget, not a directory) blocks everything.

A blocked bundle's release is left exactly as it is: not upgraded, not rolled back, never pruned.
Everything else is applied. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from agent.fleet.errors import FleetRepoError, Problem, UnknownClusterError
from agent.fleet.files import ContentCache
from agent.fleet.model import Bundle, Cluster, ClusterPlan, DesiredRelease, FleetRepo
from agent.fleet.planning import dependency_order, desired_release
from agent.fleet.repo import LoadedFleet
from agent.fleet.rollout import wave_position
from agent.fleet.selectors import matching_targets
from agent.fleet.validation import collision_message, untargeted_message
from agent.fleet.valuesize import json_size, too_big


@dataclasses.dataclass(frozen=True)
class BlockedRelease:
    """A bundle this cluster would run that is not applied this time, and why."""

    bundle: str
    release: str
    namespace: str
    reason: str


@dataclasses.dataclass(frozen=True)
class AgentPlan:
    plan: ClusterPlan
    problems: tuple[Problem, ...]
    """Every problem of the repo, plus those that concern this cluster only."""
    blocked: tuple[BlockedRelease, ...]
    protected_bundles: frozenset[str]
    """Bundles whose releases must not be pruned: broken or blocked, so their targets are unknown."""


def plan_agent(loaded: LoadedFleet, cluster_name: str, cache: ContentCache | None = None) -> AgentPlan:
    """The releases ``cluster_name`` applies from ``loaded``, and what is held back.

    With the agent's ``cache`` (the one ``loaded`` came from), a bundle, cluster and groups that
    are the very objects of the last pass give the release planned then, without merging again.

    Raises ``FleetRepoError`` when the repo as a whole or this cluster's own file has problems,
    ``UnknownClusterError`` when no file declares the cluster.
    """
    if loaded.fatal:
        raise FleetRepoError(loaded.problems)
    cluster = loaded.clusters.get(cluster_name)
    if cluster is None:
        if cluster_name in loaded.broken_clusters:
            raise FleetRepoError(loaded.problems)
        raise UnknownClusterError(cluster_name, loaded.clusters)
    releases: dict[str, DesiredRelease] = {}
    view = FleetRepo(
        clusters=loaded.clusters, groups=loaded.groups, bundles=loaded.bundles, settings=loaded.settings
    )
    for name, bundle in loaded.bundles.items():
        release = _desired(bundle, cluster, loaded, cache)
        if release is not None:
            position = wave_position(view, bundle, cluster)  # staged rollouts (agent.fleet.rollout)
            releases[name] = release if position is None else dataclasses.replace(release, wave=position)
    checks = _OnCluster(loaded, cluster_name, releases)
    for name in list(releases):
        size = json_size(releases[name].values)
        if size > loaded.limits.max_values_bytes:
            problem = too_big(loaded.bundles[name], cluster_name, size, loaded.limits)
            checks.problems.append(problem)
            checks.block(name, problem.message)
    checks.collisions()
    checks.dependencies()
    blocked, problems = checks.blocked, [*loaded.problems, *checks.problems]
    for name, (bundle, reason) in loaded.blocked.items():
        if matching_targets(bundle, cluster, loaded.groups):
            blocked[name] = BlockedRelease(name, bundle.release, bundle.namespace, reason)
    return AgentPlan(
        plan=ClusterPlan(cluster=cluster, releases=dependency_order(releases)),
        problems=tuple(sorted(set(problems))),
        blocked=tuple(blocked[name] for name in sorted(blocked)),
        protected_bundles=frozenset(loaded.broken_bundles | blocked.keys() | loaded.blocked.keys()),
    )


def _desired(
    bundle: Bundle, cluster: Cluster, loaded: LoadedFleet, cache: ContentCache | None
) -> DesiredRelease | None:
    if cache is None:
        return desired_release(bundle, cluster, loaded.groups)
    groups = tuple(loaded.groups.get(t.cluster_group) for t in bundle.targets if t.cluster_group is not None)
    kind = f"Release {cluster.name}"
    found = cache.memo(bundle, kind)
    if found is not None:
        last_cluster, last_groups, release = found[0]
        same_groups = len(last_groups) == len(groups) and all(
            last is group for last, group in zip(last_groups, groups, strict=True)
        )
        if last_cluster is cluster and same_groups:
            return release  # type: ignore[no-any-return]
    release = desired_release(bundle, cluster, loaded.groups)
    cache.remember(bundle, kind, (cluster, groups, release))
    return release


def _blocked(release: DesiredRelease, reason: str) -> BlockedRelease:
    return BlockedRelease(release.bundle, release.release, release.namespace, reason)


class _OnCluster:
    """The checks that concern one cluster, each blocking the releases it concerns."""

    def __init__(self, loaded: LoadedFleet, cluster_name: str, releases: dict[str, DesiredRelease]) -> None:
        self.loaded = loaded
        self.cluster_name = cluster_name
        self.releases = releases
        self.blocked: dict[str, BlockedRelease] = {}
        self.problems: list[Problem] = []

    def block(self, name: str, reason: str) -> None:
        self.blocked[name] = _blocked(self.releases.pop(name), reason)

    def collisions(self) -> None:
        """Two bundles installing one release here: neither is applied (which one is meant is unknown)."""
        by_key: dict[tuple[str, str], list[str]] = {}
        for name, release in self.releases.items():
            by_key.setdefault((release.namespace, release.release), []).append(name)
        for (namespace, release_name), names in by_key.items():
            if len(names) < 2:
                continue
            first, *others = sorted(names)
            for other in others:
                bundle = self.loaded.bundles[other]
                message = collision_message(
                    first, other, release_name, namespace, f"cluster {self.cluster_name}"
                )
                self.problems.append(Problem(bundle.origin.file, bundle.origin.line, message))
            for name in names:
                self.block(name, "not applied: another bundle installs the same release")

    def dependencies(self) -> None:
        """A bundle whose dependency is not applied here is not applied either, transitively."""
        changed = True
        while changed:
            changed = False
            for name in sorted(self.releases):
                bundle = self.loaded.bundles[name]
                missing = next((d for d in bundle.depends_on if d.bundle not in self.releases), None)
                if missing is None:
                    continue
                if missing.bundle in self.loaded.bundles and missing.bundle not in self.blocked:
                    message = untargeted_message(name, missing.bundle, f"cluster {self.cluster_name}")
                    self.problems.append(Problem(bundle.origin.file, missing.line, message))
                self.block(name, f"not applied: it depends on {missing.bundle!r}, which is not applied here")
                changed = True


def protected_releases(plan: AgentPlan) -> Mapping[tuple[str, str], str]:
    """(namespace, release) of every blocked release this cluster runs, which pruning must skip."""
    return {(b.namespace, b.release): b.bundle for b in plan.blocked}
