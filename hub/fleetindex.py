"""Summaries for the operator's views, kept up to date as reports commit (never computed by a scan).

The read model tells a :class:`FleetIndex` of every change of a cluster (its summary and
connectivity before and after); the index keeps, for the fleet at a glance, the errors page and
the versions page:

* clusters per display state (``Offline``, ``Stale``, or the health of an online cluster), per
  value of every label key, and the most common cause per label value;
* error groups by signature (:mod:`hub.signatures`): count, bundles, commits, first and last seen,
  an example, the clusters (sorted, so a page of them costs its size);
* per bundle: clusters per chart version, per digest, and the clusters on each commit (sorted);
* clusters per agent version, in the whole fleet, per value of every label key, and per wave of the
  agent's own bundle (``flotilla-system``); the fleet's history samples and events (:mod:`hub.timeline`).

A report that changes nothing the index keeps costs a few comparisons. Its own lock guards it;
the read model calls it with its own lock held (so the order is always model, then index).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from hub.aggregate import DISPLAY_STATES, display_state
from hub.error_groups import ErrorGroup, ErrorGroups, drop, insort
from hub.model import BundleBrief, ClusterSummary
from hub.rollups import bump
from hub.timeline import FleetHistory

if TYPE_CHECKING:
    from hub.history_store import Journal, Stored
    from hub.readmodel import ReadModel

AGENT_BUNDLE = "flotilla-system"  # the agent's own bundle (agent.selfbundle.SELF_BUNDLE)
STATES = DISPLAY_STATES  # display states, worst first (one rule for the glance bar and the cards)
STATE_RANK = {state: rank for rank, state in enumerate(STATES)}


class Observer(Protocol):
    def load(self, clusters: list[tuple[ClusterSummary, str]], now: float) -> None: ...

    def changed(
        self,
        old: ClusterSummary | None,
        old_connectivity: str | None,
        new: ClusterSummary | None,
        new_connectivity: str | None,
        now: float | None,
    ) -> None: ...


@dataclass(slots=True)
class BundleVersions:
    chart_versions: Counter[str] = field(default_factory=Counter)
    digests: Counter[str] = field(default_factory=Counter)
    on_commit: dict[str, list[str]] = field(default_factory=dict)  # commit ("" none) -> sorted names


def agent_wave(summary: ClusterSummary) -> tuple[str, int]:
    """The wave the cluster's agent is upgraded in and its place in the order (("", 0) when the
    agent's own bundle has no waves)."""
    facts = (summary.rollout or {}).get("bundles", {}).get(AGENT_BUNDLE)
    if not isinstance(facts, dict) or not facts.get("wave_name"):
        return "", 0
    number = facts.get("wave")
    return str(facts["wave_name"]), number if isinstance(number, int) else 0


def _bump_nested(
    table: dict[str, dict[str, Counter[str]]], key: str, value: str, item: str, delta: int
) -> None:
    values = table.setdefault(key, {})
    counts = values.setdefault(value, Counter())
    bump(counts, item, delta)
    if not counts:
        del values[value]
        if not values:
            del table[key]


class FleetIndex:
    def __init__(self, stored: Stored | None = None, journal: Journal | None = None) -> None:
        self.lock = threading.Lock()
        self.error_groups = ErrorGroups(journal, stored.first_seen if stored else None)
        self.states: Counter[str] = Counter()
        self.by_label: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> display state -> n
        self.causes: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> cause -> n
        self.errors: dict[str, ErrorGroup] = self.error_groups.errors  # signature -> group
        self.error_ids: dict[str, str] = self.error_groups.error_ids  # signature id -> signature
        self.bundles: dict[str, BundleVersions] = {}
        self.agents: Counter[str] = Counter()
        self.agents_by_label: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> version -> n
        self.agents_by_wave: dict[str, Counter[str]] = {}  # agent bundle's wave -> version -> n
        self.agent_wave_numbers: dict[str, int] = {}  # wave name -> its place, as last reported
        self.history = FleetHistory(journal, stored)
        self._loading = False

    # --- writer side ------------------------------------------------------------------------------

    def changed(
        self,
        old: ClusterSummary | None,
        old_connectivity: str | None,
        new: ClusterSummary | None,
        new_connectivity: str | None,
        now: float | None,
    ) -> None:
        before = display_state(old.health, old_connectivity or "Online") if old else None
        after = display_state(new.health, new_connectivity or "Online") if new else None
        with self.lock:
            if now is not None:  # a sample is the fleet up to ``now``: taken before the changes at ``now``
                self.history.sample(self.states, now)
            if (
                before != after
                or old is None
                or new is None
                or old.labels != new.labels
                or old.cause != new.cause
            ):
                if old is not None and before is not None:
                    self._count_state(old, before, -1)
                if new is not None and after is not None:
                    self._count_state(new, after, 1)
            if (
                old is None
                or new is None
                or old.agent_version != new.agent_version
                or old.labels != new.labels
                or agent_wave(old) != agent_wave(new)
            ):
                if old is not None:
                    self._count_agent(old, -1)
                if new is not None:
                    self._count_agent(new, 1)
            if old is None or new is None or old.bundles != new.bundles:
                self._versions(old, new)
            self.error_groups.changed(old, new)
            if now is not None and not self._loading:
                self.history.record(old, before, new, after, now)

    def load(self, clusters: list[tuple[ClusterSummary, str]], now: float) -> None:
        """Take in a whole fleet at once (start-up): counted in bulk, every list sorted once."""
        with self.lock:
            self._loading = True
            self.error_groups.loading()
            states = [(s, display_state(s.health, conn)) for s, conn in clusters]
            self.states.update(state for _, state in states)
            for (key, value, state), n in Counter(
                (k, v, state) for s, state in states for k, v in s.labels.items()
            ).items():
                self.by_label.setdefault(key, {}).setdefault(value, Counter())[state] = n
                self.causes.setdefault(key, {}).setdefault(value, Counter())
            for (key, value, cause), n in Counter(
                (k, v, s.cause) for s, _ in states if s.cause for k, v in s.labels.items()
            ).items():
                self.causes[key][value][cause] = n
            self.agents.update(s.agent_version for s, _ in clusters)
            for (key, value, version), n in Counter(
                (k, v, s.agent_version) for s, _ in clusters for k, v in s.labels.items()
            ).items():
                self.agents_by_label.setdefault(key, {}).setdefault(value, Counter())[version] = n
            waves = [(agent_wave(s), s.agent_version) for s, _ in clusters]
            for ((wave, number), version), n in Counter(waves).items():
                if wave:
                    self.agents_by_wave.setdefault(wave, Counter())[version] = n
                    self.agent_wave_numbers[wave] = number
            alike: dict[int, tuple[tuple[BundleBrief, ...], list[str]]] = {}  # clusters per shared briefs
            for s, _ in clusters:
                shared = alike.get(id(s.bundles))
                if shared is None:
                    shared = alike[id(s.bundles)] = (s.bundles, [])
                shared[1].append(s.name)
                if s.problems:
                    self.error_groups.changed(None, s)
            for briefs, names in alike.values():
                for brief in briefs:
                    versions = self.bundles.get(brief.bundle)
                    if versions is None:
                        versions = self.bundles[brief.bundle] = BundleVersions()
                    versions.on_commit.setdefault(brief.commit or "", []).extend(names)
                    versions.chart_versions[brief.chart_version] += len(names)
                    if brief.digest:
                        versions.digests[brief.digest] += len(names)
            for versions in self.bundles.values():
                for members in versions.on_commit.values():
                    members.sort()
            self.error_groups.loaded()
            self._loading = False
            self.history.sample(self.states, now)

    def _count_state(self, summary: ClusterSummary, state: str, delta: int) -> None:
        bump(self.states, state, delta)
        for key, value in summary.labels.items():
            values = self.by_label.get(key)
            if values is None:
                values = self.by_label[key] = {}
                self.causes[key] = {}
            counts = values.get(value)
            if counts is None:
                counts = values[value] = Counter()
                self.causes[key][value] = Counter()
            bump(counts, state, delta)
            if summary.cause:
                bump(self.causes[key][value], summary.cause, delta)
            if not counts:
                del values[value]
                self.causes[key].pop(value, None)
                if not values:
                    del self.by_label[key]
                    self.causes.pop(key, None)

    def _count_agent(self, summary: ClusterSummary, delta: int) -> None:
        version = summary.agent_version
        bump(self.agents, version, delta)
        for key, value in summary.labels.items():
            _bump_nested(self.agents_by_label, key, value, version, delta)
        wave, number = agent_wave(summary)
        if wave:
            counts = self.agents_by_wave.setdefault(wave, Counter())
            bump(counts, version, delta)
            if delta > 0:
                self.agent_wave_numbers[wave] = number
            if not counts:
                del self.agents_by_wave[wave]
                self.agent_wave_numbers.pop(wave, None)

    def _versions(self, old: ClusterSummary | None, new: ClusterSummary | None) -> None:
        previous = {b.bundle: b for b in old.bundles} if old else {}
        current = {b.bundle: b for b in new.bundles} if new else {}
        for name, brief in previous.items():
            if current.get(name) != brief and old is not None:
                self._place(old.name, brief, -1)
        for name, brief in current.items():
            if previous.get(name) != brief and new is not None:
                self._place(new.name, brief, 1)

    def _place(self, cluster: str, brief: BundleBrief, delta: int) -> None:
        versions = self.bundles.get(brief.bundle)
        if versions is None:
            versions = self.bundles[brief.bundle] = BundleVersions()
        bump(versions.chart_versions, brief.chart_version, delta)
        if brief.digest:
            bump(versions.digests, brief.digest, delta)
        members = versions.on_commit.setdefault(brief.commit or "", [])
        if delta > 0 and self._loading:  # sorted once when the load ends
            members.append(cluster)
        elif delta > 0:
            insort(members, cluster)
        else:
            drop(members, cluster)
            if not members:
                del versions.on_commit[brief.commit or ""]
            if not versions.on_commit:
                del self.bundles[brief.bundle]


def attach(
    model: ReadModel, now: float, stored: Stored | None = None, journal: Journal | None = None
) -> FleetIndex:
    """A new index told of every cluster in ``model`` and of every change from now on; ``stored`` is
    the history saved before a restart, ``journal`` collects what to save from now on."""
    index = FleetIndex(stored, journal)
    model.observe(index, now)
    return index


_ATTACHING = threading.Lock()


def of(model: ReadModel, now: float) -> FleetIndex:
    """The index attached to ``model`` (attached now if it has none, e.g. a model built in a test)."""
    with _ATTACHING:
        for observer in model.observers:
            if isinstance(observer, FleetIndex):
                return observer
        return attach(model, now)
