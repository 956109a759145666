"""Read queries behind the operator's views (glance, errors, versions, history), shared by the pages
and the JSON API. Each copies what it needs from the :class:`hub.fleetindex.FleetIndex` under its
lock and costs the size of its answer (a page of groups, of errors, of clusters), not the fleet's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from hub import fleetindex, queries
from hub.aggregate import ClusterView, Rollout
from hub.fleetindex import STATE_RANK, STATES, ErrorGroup, FleetIndex
from hub.readmodel import ReadModel
from hub.rollups import page_of

DEFAULT_GROUP = "region"
MAX_KEYS = 50


def state_query(state: str) -> dict[str, str]:
    """The cluster-list filter that shows the clusters in display state ``state``."""
    if state in ("Offline", "Stale"):
        return {"connectivity": state}
    return {"health": state, "connectivity": "Online"}


def ordered(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return [(state, counts[state]) for state in STATES if counts.get(state)]


def worst(counts: Mapping[str, int]) -> str | None:
    """The worst display state present, Ready and Paused (decisions, not problems) aside."""
    for state, _ in ordered(counts):
        if state not in ("Ready", "Paused"):
            return state
    return None


def sentence(counts: Mapping[str, int]) -> str:
    """``212 of 240 Ready, 25 Offline, 3 Failed``."""
    total = sum(counts.values())
    parts = [f"{counts.get('Ready', 0)} of {total} Ready"]
    parts += [f"{n} {state}" for state, n in ordered(counts) if state != "Ready"]
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Group:
    value: str
    counts: dict[str, int]
    total: int
    worst: str | None
    cause: str  # the most common cause of trouble in the group ("" when none)


@dataclass(frozen=True, slots=True)
class Glance:
    states: dict[str, int]
    total: int
    key: str
    keys: list[str]
    groups_total: int
    groups: list[Group]


def _group_order(group: Group) -> tuple[int, int, str]:
    """Groups with trouble first (by their worst state, then by how many are not Ready), then by value."""
    rank = STATE_RANK[group.worst] if group.worst else len(STATES)
    return rank, -(group.total - group.counts.get("Ready", 0)), group.value


def glance(model: ReadModel, key: str, now: float, offset: int, limit: int) -> Glance:
    model.advance(now)
    index = fleetindex.of(model, now)
    key = key[:253] or DEFAULT_GROUP
    with index.lock:
        states = dict(index.states)
        keys = sorted(index.by_label, key=lambda k: (k != DEFAULT_GROUP, k))
        values = [(v, dict(c)) for v, c in index.by_label.get(key, {}).items()]
        causes = index.causes.get(key, {})
        tops = {v: (causes[v].most_common(1)[0][0] if causes.get(v) else "") for v, _ in values}
    groups = [Group(v, c, sum(c.values()), worst(c), tops[v]) for v, c in values]
    groups.sort(key=_group_order)
    return Glance(
        states, sum(states.values()), key, keys[:MAX_KEYS], len(groups), groups[offset : offset + limit]
    )


def errors(model: ReadModel, now: float, offset: int, limit: int) -> tuple[int, list[ErrorGroup]]:
    """Error groups, the most widespread first (copies: safe to render while reports commit)."""
    index = fleetindex.of(model, now)
    with index.lock:
        groups = sorted(index.errors.values(), key=lambda g: (-g.count, g.signature))
        page = [_copy(g) for g in groups[offset : offset + limit]]
        return len(groups), page


def _copy(group: ErrorGroup, members: Iterable[str] = ()) -> ErrorGroup:
    return replace(
        group, bundles=Counter(group.bundles), commits=Counter(group.commits), members=list(members)
    )


def error_group(
    model: ReadModel, signature_id: str, now: float, offset: int, limit: int
) -> tuple[ErrorGroup, int, list[ClusterView]] | None:
    """One error group, how many clusters it affects and one page of them."""
    index = fleetindex.of(model, now)
    with index.lock:
        signature = index.error_ids.get(signature_id)
        group = index.errors.get(signature) if signature else None
        if group is None:
            return None
        total = group.count
        copy = _copy(group, group.members[offset : offset + limit])
    views = [v for name in copy.members if (v := model.view(name, now)) is not None]
    return copy, total, views


@dataclass(frozen=True, slots=True)
class BundleVersions:
    rollout: Rollout
    chart_versions: list[tuple[str, int]]
    digests: list[tuple[str, int]]
    behind: int  # clusters not on the target (newest) commit


_NUMBER = re.compile(r"\d+")


def version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Orders ``1.10.0`` after ``1.9.2`` (numbers as numbers), for "newest first"."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.+-]", version))


def _by_version(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: version_key(kv[0]), reverse=True)


def versions(model: ReadModel, now: float, offset: int, limit: int) -> tuple[int, list[BundleVersions]]:
    total, rollouts = queries.rollouts(model, now, offset, limit)
    index = fleetindex.of(model, now)
    out = []
    with index.lock:
        for r in rollouts:
            v = index.bundles.get(r.bundle)
            if v is None:
                continue
            on_target = len(v.on_commit.get(r.target_commit or "", ()))
            digests = sorted(v.digests.items(), key=lambda kv: (-kv[1], kv[0]))
            out.append(BundleVersions(r, _by_version(v.chart_versions), digests, r.clusters - on_target))
    return total, out


def agents(model: ReadModel, now: float) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Clusters per agent version (newest first) and per ``arch`` label (most first)."""
    index = fleetindex.of(model, now)
    with index.lock:
        agent = _by_version(index.agents)
        arch = Counter({v: sum(c.values()) for v, c in index.by_label.get("arch", {}).items()})
    return agent, sorted(arch.items(), key=lambda kv: (-kv[1], kv[0]))


AGENT_GROUPS_PER_PAGE = 50
WAVE = "wave"  # ``by=wave``: agent versions by the wave of the agent's own bundle


@dataclass(frozen=True)
class AgentGroups:
    """Agent versions per value of one dimension (a label key, or the agent bundle's wave)."""

    by: str
    dimensions: list[str]  # what ``by`` may be: "wave" (when the agent bundle has waves), then label keys
    total: int  # groups in all
    groups: list[tuple[str, int, list[tuple[str, int]]]]  # value, clusters, versions newest first


def agents_by(model: ReadModel, now: float, by: str, offset: int, limit: int) -> AgentGroups:
    """One page of groups, most clusters first (waves in their order); ``by`` "" is the default,
    and unknown gives no groups (not an error: a label may have just gone from the fleet)."""
    index = fleetindex.of(model, now)
    with index.lock:
        dimensions = ([WAVE] if index.agents_by_wave else []) + sorted(index.agents_by_label)[:MAX_KEYS]
        if not by:  # the agent's own waves when it has them, else the glance's default label
            by = WAVE if index.agents_by_wave else DEFAULT_GROUP
        table = index.agents_by_wave if by == WAVE else index.agents_by_label.get(by, {})
        sizes = [(v, sum(c.values())) for v, c in table.items()]
        if by == WAVE:  # in wave order
            numbers = index.agent_wave_numbers
            sizes.sort(key=lambda kv: (numbers.get(kv[0], 0), kv[0]))
        else:
            sizes.sort(key=lambda kv: (-kv[1], kv[0]))
        page = sizes[offset : offset + limit]
        groups = [(value, n, _by_version(table[value])) for value, n in page]
    return AgentGroups(by, dimensions, len(sizes), groups)


def behind(
    model: ReadModel, bundle: str, now: float, offset: int, limit: int
) -> tuple[Rollout, int, list[ClusterView]] | None:
    """The clusters whose ``bundle`` is not on its target commit, one page of them (by commit, name)."""
    r = queries.rollout(model, bundle, now)
    if r is None:
        return None
    index = fleetindex.of(model, now)
    with index.lock:
        v = index.bundles.get(bundle)
        lists = (
            [] if v is None else [m for c, m in sorted(v.on_commit.items()) if c != (r.target_commit or "")]
        )
        total = sum(len(m) for m in lists)
        names = page_of(lists, offset, limit)
    return r, total, [view for name in names if (view := model.view(name, now)) is not None]


def index_of(model: ReadModel, now: float) -> FleetIndex:
    return fleetindex.of(model, now)
