"""Which clusters a label selector, a target or a bundle matches.

Two equivalent ways: ``*_matches`` answers for one cluster (what the planner needs), and
``ClusterIndex`` answers for the whole fleet at once with set operations over a label index
(what validation needs to check thousands of clusters against every bundle quickly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from agent.fleet.model import Bundle, Cluster, ClusterGroup, LabelSelector, Requirement, Target


def requirement_matches(requirement: Requirement, labels: Mapping[str, str]) -> bool:
    """Kubernetes semantics: NotIn and DoesNotExist also match clusters without the key."""
    present = requirement.key in labels
    if requirement.operator == "Exists":
        return present
    if requirement.operator == "DoesNotExist":
        return not present
    is_in = present and labels[requirement.key] in requirement.values
    return is_in if requirement.operator == "In" else not is_in


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Every matchLabels pair and every expression must hold; the empty selector matches all."""
    return all(labels.get(key) == value for key, value in selector.match_labels.items()) and all(
        requirement_matches(requirement, labels) for requirement in selector.match_expressions
    )


def fields_match(
    cluster: Cluster,
    groups: Mapping[str, ClusterGroup],
    *,
    names: Iterable[str] | None,
    selector: LabelSelector | None,
    group: str | None,
) -> bool:
    """Every selection field that is set must match (AND); an unknown group matches nothing."""
    if names is not None and cluster.name not in names:
        return False
    if selector is not None and not selector_matches(selector, cluster.labels):
        return False
    if group is not None:
        found = groups.get(group)
        if found is None or not selector_matches(found.selector, cluster.labels):
            return False
    return True


def target_matches(target: Target, cluster: Cluster, groups: Mapping[str, ClusterGroup]) -> bool:
    """Every field the target sets must match (AND); a target naming an unknown group matches nothing."""
    names = None if target.cluster_name is None else (target.cluster_name,)
    if not fields_match(
        cluster, groups, names=names, selector=target.cluster_selector, group=target.cluster_group
    ):
        return False
    return any(
        field is not None for field in (target.cluster_name, target.cluster_selector, target.cluster_group)
    )


def matching_targets(
    bundle: Bundle, cluster: Cluster, groups: Mapping[str, ClusterGroup]
) -> tuple[Target, ...]:
    """The bundle's targets that match the cluster, in file order; empty means not targeted."""
    return tuple(target for target in bundle.targets if target_matches(target, cluster, groups))


class ClusterIndex:
    """Clusters indexed by label, for computing a selector's whole match set at once.

    A set of clusters is an int with one bit per cluster: intersecting two sets of 8,000 clusters
    is one machine-word loop instead of 8,000 hash lookups.
    """

    def __init__(self, clusters: Iterable[Cluster]) -> None:
        self._names: list[str] = []
        self._bit: dict[str, int] = {}
        self._with_key: defaultdict[str, int] = defaultdict(int)
        self._with_label: defaultdict[tuple[str, str], int] = defaultdict(int)
        for cluster in clusters:
            bit = 1 << len(self._names)
            self._bit[cluster.name] = bit
            self._names.append(cluster.name)
            for key, value in cluster.labels.items():
                self._with_key[key] |= bit
                self._with_label[key, value] |= bit
        self.all = (1 << len(self._names)) - 1

    def names_of(self, mask: int) -> frozenset[str]:
        names = self._names
        result = []
        while mask:
            low = mask & -mask
            result.append(names[low.bit_length() - 1])
            mask ^= low
        return frozenset(result)

    def select(self, selector: LabelSelector) -> int:
        matched = self.all
        for key, value in selector.match_labels.items():
            matched &= self._with_label.get((key, value), 0)
        for requirement in selector.match_expressions:
            matched &= self._requirement(requirement)
        return matched

    def targeted(self, bundle: Bundle, groups: Mapping[str, ClusterGroup]) -> int:
        """Every cluster that at least one of the bundle's targets matches."""
        matched = 0
        for target in bundle.targets:
            matched |= self._target(target, groups)
        return matched

    def _target(self, target: Target, groups: Mapping[str, ClusterGroup]) -> int:
        if target.cluster_name is None and target.cluster_selector is None and target.cluster_group is None:
            return 0
        matched = self.all
        if target.cluster_name is not None:
            matched &= self._bit.get(target.cluster_name, 0)
        if target.cluster_selector is not None:
            matched &= self.select(target.cluster_selector)
        if target.cluster_group is not None:
            group = groups.get(target.cluster_group)
            matched &= self.select(group.selector) if group is not None else 0
        return matched

    def _requirement(self, requirement: Requirement) -> int:
        if requirement.operator in ("Exists", "DoesNotExist"):
            having = self._with_key.get(requirement.key, 0)
            return having if requirement.operator == "Exists" else self.all & ~having
        is_in = 0
        for value in requirement.values:
            is_in |= self._with_label.get((requirement.key, value), 0)
        return is_in if requirement.operator == "In" else self.all & ~is_in
