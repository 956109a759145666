"""Per-bundle rollups maintained as reports commit: counts by state and by commit, and the placements
in page order, so a bundle's view (or the list of every bundle) never walks the fleet.

Not thread-safe by itself: :class:`hub.readmodel.ReadModel` holds its lock around every call.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.contract import BUNDLE_STATES
from hub.model import BundleBrief, ClusterSummary


@dataclass(slots=True)
class BundleRollup:
    bundle: str
    by_state: Counter[str] = field(default_factory=Counter)
    by_commit: dict[str | None, Counter[str]] = field(default_factory=dict)
    desired: Counter[str] = field(default_factory=Counter)
    offline: int = 0
    # cluster names per state, each sorted: the placements list is worst state first, then by name
    members: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clusters(self) -> int:
        return sum(self.by_state.values())


class Rollups:
    def __init__(self) -> None:
        self._by_bundle: dict[str, BundleRollup] = {}
        self.names: list[str] = []  # sorted bundle names

    def add(self, summary: ClusterSummary, offline: bool, *, bulk: bool = False) -> None:
        """Count ``summary``'s bundles in; ``bulk`` appends unsorted (call :meth:`sort` after a load)."""
        for brief in summary.bundles:
            rollup = self._by_bundle.get(brief.bundle)
            if rollup is None:
                rollup = self._by_bundle[brief.bundle] = BundleRollup(brief.bundle)
                if bulk:
                    self.names.append(brief.bundle)
                else:
                    bisect.insort(self.names, brief.bundle)
            self._count(rollup, brief, 1, offline)
            members = rollup.members.get(brief.state)
            if members is None:
                members = rollup.members[brief.state] = []
            if bulk:
                members.append(summary.name)
            else:
                bisect.insort(members, summary.name)

    def load(self, clusters: Iterable[tuple[ClusterSummary, bool]]) -> None:
        """Count a whole fleet in at start-up (empty rollups). Clusters that share their bundle briefs
        (:func:`hub.model.summary_from_json` hands out one tuple per distinct set) are counted once per
        set, so the cost is the fleet's size plus the distinct sets' briefs, not clusters x bundles."""
        groups: dict[int, tuple[tuple[BundleBrief, ...], list[str], list[bool]]] = {}
        for summary, offline in clusters:
            group = groups.get(id(summary.bundles))
            if group is None:
                group = groups[id(summary.bundles)] = (summary.bundles, [], [])
            group[1].append(summary.name)
            group[2].append(offline)
        for briefs, names, offline_flags in groups.values():
            n, offline_count = len(names), sum(offline_flags)
            for brief in briefs:
                rollup = self._by_bundle.get(brief.bundle)
                if rollup is None:
                    rollup = self._by_bundle[brief.bundle] = BundleRollup(brief.bundle)
                    self.names.append(brief.bundle)
                rollup.by_state[brief.state] += n
                rollup.by_commit.setdefault(brief.commit, Counter())[brief.state] += n
                if brief.desired_commit:
                    rollup.desired[brief.desired_commit] += n
                rollup.offline += offline_count
                rollup.members.setdefault(brief.state, []).extend(names)
        self.sort()

    def set_offline(self, summary: ClusterSummary, offline: bool) -> None:
        """The cluster went Offline (or came back): only the offline counts of its bundles change."""
        for brief in summary.bundles:
            rollup = self._by_bundle.get(brief.bundle)
            if rollup is not None:
                rollup.offline += 1 if offline else -1

    def sort(self) -> None:
        self.names.sort()
        for rollup in self._by_bundle.values():
            for members in rollup.members.values():
                members.sort()

    def remove(self, summary: ClusterSummary, offline: bool) -> None:
        for brief in summary.bundles:
            rollup = self._by_bundle.get(brief.bundle)
            if rollup is None:
                continue
            self._count(rollup, brief, -1, offline)
            members = rollup.members.get(brief.state, [])
            index = bisect.bisect_left(members, summary.name)
            if index < len(members) and members[index] == summary.name:
                del members[index]
            if not members:
                rollup.members.pop(brief.state, None)
            if rollup.clusters == 0:
                del self._by_bundle[brief.bundle]
                self.names.pop(bisect.bisect_left(self.names, brief.bundle))

    @staticmethod
    def _count(rollup: BundleRollup, brief: BundleBrief, delta: int, offline: bool) -> None:
        bump(rollup.by_state, brief.state, delta)
        states = rollup.by_commit.get(brief.commit)
        if states is None:
            states = rollup.by_commit[brief.commit] = Counter()
        bump(states, brief.state, delta)
        if not states:
            del rollup.by_commit[brief.commit]
        if brief.desired_commit:
            bump(rollup.desired, brief.desired_commit, delta)
        if offline:
            rollup.offline += delta

    def copy_of(self, bundle: str) -> BundleRollup | None:
        """A copy of the counts (not of the member lists) that stays consistent while it is rendered."""
        rollup = self._by_bundle.get(bundle)
        if rollup is None:
            return None
        return BundleRollup(
            bundle,
            Counter(rollup.by_state),
            {commit: Counter(states) for commit, states in rollup.by_commit.items()},
            Counter(rollup.desired),
            rollup.offline,
        )

    def placement_window(self, bundle: str, offset: int, limit: int) -> list[str]:
        rollup = self._by_bundle.get(bundle)
        if rollup is None:
            return []
        return page_of((rollup.members.get(state, []) for state in BUNDLE_STATES), offset, limit)


def page_of(lists: Iterable[list[str]], offset: int, limit: int) -> list[str]:
    """Items ``offset`` to ``offset + limit`` of the concatenation of ``lists``, copying only those."""
    taken: list[str] = []
    for items in lists:
        if offset >= len(items):
            offset -= len(items)
            continue
        taken.extend(items[offset : offset + limit - len(taken)])
        offset = 0
        if len(taken) >= limit:
            break
    return taken


def bump(counter: Counter[str], key: str, delta: int) -> None:
    """Add ``delta`` to ``counter[key]``, dropping the key at zero (shared by the hub's indexes)."""
    value = counter.get(key, 0) + delta
    if value > 0:
        counter[key] = value
    else:
        counter.pop(key, None)
