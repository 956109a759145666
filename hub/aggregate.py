"""Pure aggregation over cluster summaries: fleet summary, filtered cluster list, rollout views."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hub.connectivity import CONNECTIVITY_STATES, Thresholds, connectivity
from hub.contract import BUNDLE_STATES
from hub.model import ClusterSummary
from hub.selector import Selector

_HEALTH_RANK = {state: rank for rank, state in enumerate(BUNDLE_STATES)}
_CONNECTIVITY_RANK = {state: rank for rank, state in enumerate(CONNECTIVITY_STATES)}


@dataclass(frozen=True, slots=True)
class ClusterView:
    """A cluster summary with its connectivity evaluated at one instant."""

    summary: ClusterSummary
    connectivity: str
    age_seconds: float


@dataclass(frozen=True, slots=True)
class FleetSummary:
    clusters: int
    by_health: dict[str, int]
    by_connectivity: dict[str, int]
    ready_and_online: int
    # each cluster once, connectivity first: Offline, Stale, else its health (the glance bar's rule)
    states: dict[str, int] = field(default_factory=dict)


DISPLAY_STATES = ("Offline", "Stale", *BUNDLE_STATES)  # worst first; the order of the cards and bars


def display_state(health: str, connectivity: str) -> str:
    """What one cluster looks like at a glance: its connectivity unless Online, else its health."""
    return health if connectivity == "Online" else connectivity


def state_query(state: str) -> dict[str, str]:
    """The cluster-list filter that shows the clusters in display state ``state``."""
    if state in ("Offline", "Stale"):
        return {"connectivity": state}
    return {"health": state, "connectivity": "Online"}


@dataclass(frozen=True, slots=True)
class ClusterFilter:
    selector: Selector = field(default_factory=Selector)
    health: frozenset[str] = frozenset()
    connectivity: frozenset[str] = frozenset()

    def matches(self, view: ClusterView) -> bool:
        return (
            (not self.health or view.summary.health in self.health)
            and (not self.connectivity or view.connectivity in self.connectivity)
            and self.selector.matches(view.summary.labels)
        )


def evaluate(clusters: Iterable[ClusterSummary], now: float, thresholds: Thresholds) -> list[ClusterView]:
    return [
        ClusterView(c, connectivity(c.last_seen, c.interval_seconds, now, thresholds), now - c.last_seen)
        for c in clusters
    ]


def fleet_summary(views: Sequence[ClusterView]) -> FleetSummary:
    health = Counter(v.summary.health for v in views)
    conn = Counter(v.connectivity for v in views)
    return FleetSummary(
        clusters=len(views),
        by_health={state: health.get(state, 0) for state in BUNDLE_STATES},
        by_connectivity={state: conn.get(state, 0) for state in CONNECTIVITY_STATES},
        ready_and_online=sum(1 for v in views if v.summary.health == "Ready" and v.connectivity == "Online"),
        states=_states(Counter(display_state(v.summary.health, v.connectivity) for v in views)),
    )


def _states(counts: Counter[str]) -> dict[str, int]:
    return {state: counts.get(state, 0) for state in DISPLAY_STATES}


def select(views: Iterable[ClusterView], cluster_filter: ClusterFilter) -> list[ClusterView]:
    """Matching clusters, the ones needing attention first (offline, then worst health), then by name."""
    matching = [v for v in views if cluster_filter.matches(v)]
    matching.sort(
        key=lambda v: (
            _CONNECTIVITY_RANK.get(v.connectivity, 0),
            _HEALTH_RANK.get(v.summary.health, 0),
            v.summary.name,
        )
    )
    return matching


@dataclass(frozen=True, slots=True)
class CommitGroup:
    commit: str | None
    clusters: int
    by_state: dict[str, int]


@dataclass(frozen=True, slots=True)
class BundlePlacement:
    cluster: str
    state: str
    commit: str | None
    desired_commit: str | None
    chart_version: str
    connectivity: str


@dataclass(frozen=True, slots=True)
class Rollout:
    """Where one bundle stands across the fleet."""

    bundle: str
    target_commit: str | None  # the commit most clusters are asked to run
    clusters: int
    by_state: dict[str, int]
    by_commit: tuple[CommitGroup, ...]  # most common commit first
    offline: int
    placements: tuple[BundlePlacement, ...]


def rollout(bundle: str, views: Iterable[ClusterView]) -> Rollout:
    placements = [
        BundlePlacement(v.summary.name, b.state, b.commit, b.desired_commit, b.chart_version, v.connectivity)
        for v in views
        for b in v.summary.bundles
        if b.bundle == bundle
    ]
    return _rollout_of(bundle, placements)


def rollouts(views: Iterable[ClusterView]) -> list[Rollout]:
    """Every bundle's rollout, by bundle name."""
    grouped: dict[str, list[BundlePlacement]] = {}
    for v in views:
        for b in v.summary.bundles:
            grouped.setdefault(b.bundle, []).append(
                BundlePlacement(
                    v.summary.name, b.state, b.commit, b.desired_commit, b.chart_version, v.connectivity
                )
            )
    return [_rollout_of(name, grouped[name]) for name in sorted(grouped)]


def _rollout_of(bundle: str, placements: list[BundlePlacement]) -> Rollout:
    placements.sort(key=lambda p: (_HEALTH_RANK.get(p.state, 0), p.cluster))
    per_commit: dict[str | None, Counter[str]] = {}
    for p in placements:
        per_commit.setdefault(p.commit, Counter())[p.state] += 1
    return rollout_from_counts(
        bundle,
        per_commit,
        Counter(p.desired_commit for p in placements if p.desired_commit),
        sum(1 for p in placements if p.connectivity == "Offline"),
        tuple(placements),
    )


def rollout_from_counts(
    bundle: str,
    per_commit: dict[str | None, Counter[str]],
    desired: Counter[str],
    offline: int,
    placements: tuple[BundlePlacement, ...] = (),
) -> Rollout:
    """A rollout from its counts (kept up to date at commit time by :mod:`hub.rollups`)."""
    groups = sorted(
        (
            CommitGroup(commit, sum(states.values()), _ordered(states))
            for commit, states in per_commit.items()
        ),
        key=lambda g: (-g.clusters, g.commit or ""),
    )
    # the commit most clusters are asked to run (ties: the greater commit id, so the choice is stable)
    target = max(desired.items(), key=lambda kv: (kv[1], kv[0]))[0] if desired else None
    target = target if target is not None else (groups[0].commit if groups else None)
    groups.sort(key=lambda g: g.commit != target)  # the target commit's group first
    by_state: Counter[str] = Counter()
    for states in per_commit.values():
        by_state.update(states)
    return Rollout(
        bundle=bundle,
        target_commit=target,
        clusters=sum(by_state.values()),
        by_state=_ordered(by_state),
        by_commit=tuple(groups),
        offline=offline,
        placements=placements,
    )


def _ordered(counts: Counter[str]) -> dict[str, int]:
    return {state: counts[state] for state in BUNDLE_STATES if counts.get(state)}


def rollout_sentence(r: Rollout) -> str:
    """E.g. ``a1b2c3 Ready on 212 of 240, 3 Failed, 25 still on 9f1e0d``."""
    if not r.by_commit:
        return "not deployed on any cluster"
    on_target = next((g for g in r.by_commit if g.commit == r.target_commit), None)
    ready = on_target.by_state.get("Ready", 0) if on_target else 0
    parts = [f"{_short(r.target_commit)} Ready on {ready} of {r.clusters}"]
    if on_target:
        parts += [f"{count} {state}" for state, count in on_target.by_state.items() if state != "Ready"]
    parts += [f"{g.clusters} still on {_short(g.commit)}" for g in r.by_commit if g is not on_target]
    if r.offline:
        parts.append(f"{r.offline} offline")
    return ", ".join(parts)


def _short(commit: str | None) -> str:
    return commit[:7] if commit else "(none)"
