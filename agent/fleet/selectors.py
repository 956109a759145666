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
    """Clusters indexed by label, for computing a selector's whole match set at once."""

    def __init__(self, clusters: Iterable[Cluster]) -> None:
        self.names: frozenset[str] = frozenset()
        self._with_key: defaultdict[str, set[str]] = defaultdict(set)
        self._with_label: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        names = set()
        for cluster in clusters:
            names.add(cluster.name)
            for key, value in cluster.labels.items():
                self._with_key[key].add(cluster.name)
                self._with_label[key, value].add(cluster.name)
        self.names = frozenset(names)

    def select(self, selector: LabelSelector) -> frozenset[str]:
        matched = set(self.names)
        for key, value in selector.match_labels.items():
            matched &= self._with_label.get((key, value), set())
        for requirement in selector.match_expressions:
            matched &= self._requirement(requirement)
        return frozenset(matched)

    def targeted(self, bundle: Bundle, groups: Mapping[str, ClusterGroup]) -> frozenset[str]:
        """Every cluster that at least one of the bundle's targets matches."""
        matched: set[str] = set()
        for target in bundle.targets:
            matched |= self._target(target, groups)
        return frozenset(matched)

    def _target(self, target: Target, groups: Mapping[str, ClusterGroup]) -> set[str]:
        if target.cluster_name is None and target.cluster_selector is None and target.cluster_group is None:
            return set()
        matched = set(self.names)
        if target.cluster_name is not None:
            matched &= {target.cluster_name}
        if target.cluster_selector is not None:
            matched &= self.select(target.cluster_selector)
        if target.cluster_group is not None:
            group = groups.get(target.cluster_group)
            matched &= self.select(group.selector) if group is not None else set()
        return matched

    def _requirement(self, requirement: Requirement) -> set[str]:
        if requirement.operator in ("Exists", "DoesNotExist"):
            having = self._with_key.get(requirement.key, set())
            return set(having) if requirement.operator == "Exists" else set(self.names - having)
        is_in: set[str] = set()
        for value in requirement.values:
            is_in |= self._with_label.get((requirement.key, value), set())
        return is_in if requirement.operator == "In" else set(self.names - is_in)
