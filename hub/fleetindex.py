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

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from hub.contract import BUNDLE_STATES
from hub.model import BundleBrief, ClusterSummary
from hub.signatures import ProblemBrief, signature_id
from hub.timeline import FleetHistory

if TYPE_CHECKING:
    from hub.readmodel import ReadModel

AGENT_BUNDLE = "flotilla-system"  # the agent's own bundle (agent.selfbundle.SELF_BUNDLE)
STATES = ("Offline", "Stale", *BUNDLE_STATES)  # display states, worst first
STATE_RANK = {state: rank for rank, state in enumerate(STATES)}


def display_state(health: str, connectivity: str) -> str:
    """What one cluster looks like at a glance: its connectivity unless Online, else its health."""
    return health if connectivity == "Online" else connectivity


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
class ErrorGroup:
    signature: str
    example: str
    example_cluster: str
    first_seen: float
    last_seen: float
    bundles: Counter[str] = field(default_factory=Counter)
    commits: Counter[str] = field(default_factory=Counter)
    members: list[str] = field(default_factory=list)  # sorted cluster names (a page of them in a copy)
    count: int = 0  # clusters affected

    @property
    def id(self) -> str:
        return signature_id(self.signature)


@dataclass(slots=True)
class BundleVersions:
    chart_versions: Counter[str] = field(default_factory=Counter)
    digests: Counter[str] = field(default_factory=Counter)
    on_commit: dict[str, list[str]] = field(default_factory=dict)  # commit ("" none) -> sorted names


def _insort(members: list[str], name: str) -> None:
    index = bisect.bisect_left(members, name)
    if index == len(members) or members[index] != name:
        members.insert(index, name)


def _drop(members: list[str], name: str) -> None:
    index = bisect.bisect_left(members, name)
    if index < len(members) and members[index] == name:
        del members[index]


def _same_errors(old: ClusterSummary, new: ClusterSummary) -> bool:
    if len(old.problems) != len(new.problems):
        return False
    return all(a.signature == b.signature for a, b in zip(old.problems, new.problems, strict=True))


def agent_wave(summary: ClusterSummary) -> str:
    """The wave the cluster's agent is upgraded in ("" when its own bundle has no waves)."""
    facts = (summary.rollout or {}).get("bundles", {}).get(AGENT_BUNDLE)
    return str(facts.get("wave_name") or "") if isinstance(facts, dict) else ""


def agent_wave_number(summary: ClusterSummary) -> int:
    facts = (summary.rollout or {}).get("bundles", {}).get(AGENT_BUNDLE)
    number = facts.get("wave") if isinstance(facts, dict) else None
    return number if isinstance(number, int) else 0


def _bump(counter: Counter[str], key: str, delta: int) -> None:
    value = counter.get(key, 0) + delta
    if value > 0:
        counter[key] = value
    else:
        counter.pop(key, None)


def _bump_nested(
    table: dict[str, dict[str, Counter[str]]], key: str, value: str, item: str, delta: int
) -> None:
    values = table.setdefault(key, {})
    counts = values.setdefault(value, Counter())
    _bump(counts, item, delta)
    if not counts:
        del values[value]
        if not values:
            del table[key]


class FleetIndex:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: Counter[str] = Counter()
        self.by_label: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> display state -> n
        self.causes: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> cause -> n
        self.errors: dict[str, ErrorGroup] = {}
        self.error_ids: dict[str, str] = {}  # signature id -> signature
        self.bundles: dict[str, BundleVersions] = {}
        self.agents: Counter[str] = Counter()
        self.agents_by_label: dict[str, dict[str, Counter[str]]] = {}  # key -> value -> version -> n
        self.agents_by_wave: dict[str, Counter[str]] = {}  # agent bundle's wave -> version -> n
        self.agent_wave_numbers: dict[str, int] = {}  # wave name -> its place, as last reported
        self.history = FleetHistory()
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
            self._errors(old, new)
            if now is not None:
                if not self._loading:
                    self.history.record(old, before, new, after, now)
                self.history.sample(self.states, now)

    def load(self, clusters: list[tuple[ClusterSummary, str]], now: float) -> None:
        """Take in a whole fleet at once (start-up): counted in bulk, every list sorted once."""
        with self.lock:
            self._loading = True
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
            for (wave, version), n in Counter((agent_wave(s), s.agent_version) for s, _ in clusters).items():
                if wave:
                    self.agents_by_wave.setdefault(wave, Counter())[version] = n
            self.agent_wave_numbers.update((agent_wave(s), agent_wave_number(s)) for s, _ in clusters)
            for s, _ in clusters:
                for brief in s.bundles:
                    versions = self.bundles.get(brief.bundle)
                    if versions is None:
                        versions = self.bundles[brief.bundle] = BundleVersions()
                    versions.on_commit.setdefault(brief.commit or "", []).append(s.name)
                if s.problems:
                    self._errors(None, s)
            for (name, version), n in Counter(
                (b.bundle, b.chart_version) for s, _ in clusters for b in s.bundles
            ).items():
                self.bundles[name].chart_versions[version] = n
            for (name, digest), n in Counter(
                (b.bundle, b.digest) for s, _ in clusters for b in s.bundles if b.digest
            ).items():
                self.bundles[name].digests[digest] = n
            for versions in self.bundles.values():
                for members in versions.on_commit.values():
                    members.sort()
            for group in self.errors.values():
                group.members.sort()
            self._loading = False
            self.history.sample(self.states, now)

    def _count_state(self, summary: ClusterSummary, state: str, delta: int) -> None:
        _bump(self.states, state, delta)
        for key, value in summary.labels.items():
            values = self.by_label.get(key)
            if values is None:
                values = self.by_label[key] = {}
                self.causes[key] = {}
            counts = values.get(value)
            if counts is None:
                counts = values[value] = Counter()
                self.causes[key][value] = Counter()
            _bump(counts, state, delta)
            if summary.cause:
                _bump(self.causes[key][value], summary.cause, delta)
            if not counts:
                del values[value]
                self.causes[key].pop(value, None)
                if not values:
                    del self.by_label[key]
                    self.causes.pop(key, None)

    def _count_agent(self, summary: ClusterSummary, delta: int) -> None:
        version = summary.agent_version
        _bump(self.agents, version, delta)
        for key, value in summary.labels.items():
            _bump_nested(self.agents_by_label, key, value, version, delta)
        wave = agent_wave(summary)
        if wave:
            counts = self.agents_by_wave.setdefault(wave, Counter())
            _bump(counts, version, delta)
            if delta > 0:
                self.agent_wave_numbers[wave] = agent_wave_number(summary)
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
        _bump(versions.chart_versions, brief.chart_version, delta)
        if brief.digest:
            _bump(versions.digests, brief.digest, delta)
        members = versions.on_commit.setdefault(brief.commit or "", [])
        if delta > 0 and self._loading:  # sorted once when the load ends
            members.append(cluster)
        elif delta > 0:
            _insort(members, cluster)
        else:
            _drop(members, cluster)
            if not members:
                del versions.on_commit[brief.commit or ""]
            if not versions.on_commit:
                del self.bundles[brief.bundle]

    def _errors(self, old: ClusterSummary | None, new: ClusterSummary | None) -> None:
        if old is not None and new is not None and old.bundles == new.bundles and _same_errors(old, new):
            for problem in new.problems:  # the usual report: same errors on the same commits
                group = self.errors[problem.signature]
                group.last_seen = max(group.last_seen, new.last_seen)
            return
        before = {p.signature: p for p in old.problems} if old else {}
        after = {p.signature: p for p in new.problems} if new else {}
        commits_before = {b.bundle: b.commit or "" for b in old.bundles} if old else {}
        commits_after = {b.bundle: b.commit or "" for b in new.bundles} if new else {}
        for signature, problem in before.items():
            if old is not None and (signature not in after or commits_after != commits_before):
                self._problem(old, problem, commits_before, -1)
        for signature, problem in after.items():
            if new is None:
                continue
            if signature not in before or commits_after != commits_before:
                self._problem(new, problem, commits_after, 1)
            group = self.errors[signature]
            group.last_seen = max(group.last_seen, new.last_seen)

    def _problem(
        self, summary: ClusterSummary, problem: ProblemBrief, commits: dict[str, str], delta: int
    ) -> None:
        group = self.errors.get(problem.signature)
        if group is None:
            if delta < 0:
                return
            group = ErrorGroup(
                problem.signature, problem.example, summary.name, summary.reported_at, summary.last_seen
            )
            self.errors[problem.signature] = group
            self.error_ids[group.id] = problem.signature
        commit = commits.get(problem.bundle) if problem.bundle else summary.commit
        _bump(group.bundles, problem.bundle or "(source)", delta)
        _bump(group.commits, commit or "", delta)
        if delta > 0:
            if self._loading:
                group.members.append(summary.name)
            else:
                _insort(group.members, summary.name)
            group.count = len(group.members)
            group.first_seen = min(group.first_seen, summary.reported_at)
        else:
            _drop(group.members, summary.name)
            group.count = len(group.members)
            if not group.members:
                del self.errors[problem.signature]
                self.error_ids.pop(group.id, None)


def attach(model: ReadModel, now: float) -> FleetIndex:
    """A new index told of every cluster in ``model`` and of every change from now on."""
    index = FleetIndex()
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
