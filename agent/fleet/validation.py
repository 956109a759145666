"""Checks across files: names that must be unique, references that must resolve, dependsOn cycles,
dependencies missing on a cluster, and two bundles fighting over one Helm release.

Everything here is pure: it takes parsed objects and returns problems.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Protocol, TypeVar

from agent.fleet import valuesize
from agent.fleet.errors import Problem, did_you_mean
from agent.fleet.limits import DEFAULT, Limits
from agent.fleet.model import Bundle, Cluster, ClusterGroup, Dependency, Origin
from agent.fleet.selectors import ClusterIndex

_MAX_LISTED = 5


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def origin(self) -> Origin: ...


NamedT = TypeVar("NamedT", bound=_Named)


def unique_by_name(items: Iterable[NamedT], what: str) -> tuple[dict[str, NamedT], list[Problem]]:
    """Items keyed by name (first declaration wins) and a problem for each later duplicate."""
    by_name: dict[str, NamedT] = {}
    problems = []
    for item in sorted(items, key=lambda item: (item.origin.file, item.origin.line)):
        first = by_name.get(item.name)
        if first is None:
            by_name[item.name] = item
        else:
            where = f"{first.origin.file}:{first.origin.line}"
            problems.append(
                Problem(
                    item.origin.file,
                    item.origin.line,
                    f"duplicate {what} name {item.name!r} (also in {where})",
                )
            )
    return dict(sorted(by_name.items())), problems


def check_references(
    bundles: Mapping[str, Bundle],
    clusters: Mapping[str, Cluster],
    groups: Mapping[str, ClusterGroup],
    *,
    unloaded: Set[str] = frozenset(),
) -> list[Problem]:
    """Targets naming unknown clusters or groups, and dependsOn naming unknown bundles.

    Names in ``unloaded`` were declared by files that failed to load; those files are reported
    already, so references to them are not reported a second time.
    """
    problems = []
    for bundle in bundles.values():
        file = bundle.origin.file
        for target in bundle.targets:
            group = target.cluster_group
            if group is not None and group not in groups and group not in unloaded:
                hint = did_you_mean(group, groups)
                problems.append(Problem(file, target.group_line, f"unknown cluster group {group!r}{hint}"))
            cluster = target.cluster_name
            if cluster is not None and cluster not in clusters and cluster not in unloaded:
                hint = did_you_mean(cluster, clusters)
                problems.append(Problem(file, target.line, f"unknown cluster {cluster!r}{hint}"))
        for dependency in bundle.depends_on:
            if dependency.bundle == bundle.name:
                problems.append(Problem(file, dependency.line, f"bundle {bundle.name!r} depends on itself"))
            elif dependency.bundle not in bundles and dependency.bundle not in unloaded:
                hint = did_you_mean(dependency.bundle, bundles)
                message = f"dependsOn unknown bundle {dependency.bundle!r}{hint}"
                problems.append(Problem(file, dependency.line, message))
    return problems


DependsOn = tuple[str, tuple[Dependency, ...]]
"""A bundle's file and its dependsOn entries."""


def dependencies_of(bundles: Mapping[str, Bundle]) -> dict[str, DependsOn]:
    return {name: (bundle.origin.file, bundle.depends_on) for name, bundle in bundles.items()}


def check_cycles(dependencies: Mapping[str, DependsOn]) -> tuple[list[Problem], set[str]]:
    """One problem per dependsOn cycle, naming it, on the dependsOn line of its first bundle; and
    every bundle that is part of a cycle.

    Takes plain dependency lists rather than bundles so that bundles whose files have other
    problems still take part: a typo elsewhere in a file must not hide a cycle through it.
    """
    graph = {
        name: sorted(d.bundle for d in entries if d.bundle in dependencies and d.bundle != name)
        for name, (_, entries) in dependencies.items()
    }
    problems = []
    members: set[str] = set()
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        members.update(component)
        cycle = _cycle_through(min(component), graph, set(component))
        file, entries = dependencies[cycle[0]]
        line = next(d.line for d in entries if d.bundle == cycle[1])
        path = " -> ".join([*cycle, cycle[0]])
        problems.append(Problem(file, line, f"dependsOn cycle: {path}"))
    return problems, members


def check_targeting(
    bundles: Mapping[str, Bundle],
    clusters: Mapping[str, Cluster],
    groups: Mapping[str, ClusterGroup],
    limits: Limits = DEFAULT,
) -> list[Problem]:
    """Dependencies not targeted where their dependents are, release name collisions, and merged
    values past Helm's limit, on every cluster."""
    index = ClusterIndex(clusters.values())
    targeted = {name: index.targeted(bundle, groups) for name, bundle in bundles.items()}
    problems = valuesize.check_all(
        bundles, clusters, groups, limits, lambda name: index.names_of(targeted[name])
    )
    for bundle in bundles.values():
        for dependency in bundle.depends_on:
            if dependency.bundle not in bundles or dependency.bundle == bundle.name:
                continue
            missing = index.names_of(targeted[bundle.name] & ~targeted[dependency.bundle])
            if missing:
                message = untargeted_message(bundle.name, dependency.bundle, _some(missing, "cluster"))
                problems.append(Problem(bundle.origin.file, dependency.line, message))
    by_release: defaultdict[tuple[str, str], list[Bundle]] = defaultdict(list)
    for bundle in bundles.values():
        by_release[bundle.release, bundle.namespace].append(bundle)
    for (release, namespace), sharing in by_release.items():
        for i, first in enumerate(sharing):
            for second in sharing[i + 1 :]:
                both = index.names_of(targeted[first.name] & targeted[second.name])
                if both:
                    message = collision_message(
                        first.name, second.name, release, namespace, _some(both, "cluster")
                    )
                    problems.append(Problem(second.origin.file, second.origin.line, message))
    return problems


def untargeted_message(bundle: str, dependency: str, where: str) -> str:
    return (
        f"bundle {bundle!r} depends on {dependency!r}, which is not targeted at {where}; "
        f"target {dependency!r} there too or drop the dependency"
    )


def collision_message(first: str, second: str, release: str, namespace: str, where: str) -> str:
    return (
        f"bundles {first!r} and {second!r} both install release {release!r} in namespace {namespace!r} "
        f"on {where}; set a different releaseName or namespace"
    )


def _some(names: Iterable[str], noun: str) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_MAX_LISTED])
    more = f" and {len(ordered) - _MAX_LISTED} more" if len(ordered) > _MAX_LISTED else ""
    return f"{noun}{'s' if len(ordered) > 1 else ''} {shown}{more}"


def _strongly_connected(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so that long dependency chains cannot overflow the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            if child < len(edges):
                work.append((node, child + 1))
                successor = edges[child]
                if successor not in index:
                    work.append((successor, 0))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_through(start: str, graph: Mapping[str, Sequence[str]], members: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside one strongly connected component."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in graph[node]:
                if successor not in members:
                    continue
                if successor == start:
                    cycle = [node]
                    while cycle[-1] != start:
                        cycle.append(previous[cycle[-1]])
                    return cycle[::-1]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    return [start]  # pragma: no cover - a component of two or more always has a cycle through start
