"""Staged-rollout facts kept as reports commit, so a gate question never walks the fleet.

An observer of the read model (like :class:`hub.fleetindex.FleetIndex`): for every bundle with a
staged rollout, the latest :class:`hub.rollout_model.Member` of each cluster that reports it; the
(bundle, commit) pairs that fresh clusters report (a rollout the hub has not started yet); and the
clusters whose deletion brake refused a prune. A gate answer then costs the asked bundles'
members, and a report that does not touch a staged rollout costs one comparison.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hub.model import ClusterSummary
from hub.rollout_model import Member

if TYPE_CHECKING:
    from hub.readmodel import ReadModel

MAX_REPORTED = 10_000  # (bundle, commit) pairs waiting to be started: what agents can make the hub hold


def _bundles(summary: ClusterSummary | None) -> Mapping[str, Mapping[str, Any]]:
    if summary is None:
        return {}
    found: Mapping[str, Mapping[str, Any]] = (summary.rollout or {}).get("bundles") or {}
    return found


def member_of(summary: ClusterSummary, bundle: str, facts: Mapping[str, Any], online: bool) -> Member:
    """The cluster's place in ``bundle``'s staged rollout, from its latest report."""
    state = next((b.state for b in summary.bundles if b.bundle == bundle), "Pending")
    return Member(
        cluster=summary.name,
        wave=int(facts["wave"]),
        commit=facts.get("commit"),
        state=state,
        holding=bool(facts.get("holding")),
        failed=bool(facts.get("failed")),
        online=online,
        error=str(facts.get("error") or ""),
    )


class RolloutIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[str, dict[str, Member]] = {}  # bundle -> cluster -> member
        self._reported: dict[tuple[str, str], Mapping[str, Any]] = {}  # fresh (bundle, commit) -> facts
        self._brakes: dict[str, dict[str, Any]] = {}  # cluster -> the brake of its last report

    # --- the read model's observer ------------------------------------------------------------------

    def load(self, clusters: list[tuple[ClusterSummary, str]], now: float) -> None:
        with self._lock:
            for summary, connectivity in clusters:
                if summary.rollout:
                    self._add(summary, connectivity)

    def changed(
        self,
        old: ClusterSummary | None,
        old_connectivity: str | None,
        new: ClusterSummary | None,
        new_connectivity: str | None,
        now: float | None,
    ) -> None:
        if (old is None or not old.rollout) and (new is None or not new.rollout):
            return  # the usual report of a fleet without staged rollouts
        with self._lock:
            if old is not None:
                self._remove(old)
            if new is not None:
                self._add(new, new_connectivity or "Online")

    def _add(self, summary: ClusterSummary, connectivity: str) -> None:
        online = connectivity != "Offline"
        for bundle, facts in _bundles(summary).items():
            self._members.setdefault(bundle, {})[summary.name] = member_of(summary, bundle, facts, online)
            commit = facts.get("commit")
            if commit and facts.get("fresh", False) and len(self._reported) < MAX_REPORTED:
                self._reported.setdefault((bundle, str(commit)), facts)
        brake = (summary.rollout or {}).get("brake")
        if brake:
            self._brakes[summary.name] = brake

    def _remove(self, summary: ClusterSummary) -> None:
        for bundle in _bundles(summary):
            members = self._members.get(bundle)
            if members is not None:
                members.pop(summary.name, None)
                if not members:
                    del self._members[bundle]
        self._brakes.pop(summary.name, None)

    # --- the rollout book's questions ---------------------------------------------------------------

    def members(self, bundle: str) -> list[Member]:
        """Every cluster whose latest report places it in ``bundle``'s staged rollout."""
        with self._lock:
            return list(self._members.get(bundle, {}).values())

    def reported(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        """(bundle, commit, facts) that fresh clusters have reported since the book last took them."""
        with self._lock:
            taken = [(bundle, commit, facts) for (bundle, commit), facts in self._reported.items()]
            self._reported.clear()
        return taken

    def brakes(self) -> list[dict[str, Any]]:
        """Every cluster whose last report says the deletion brake refused a prune, by name."""
        with self._lock:
            return [{"cluster": name, **self._brakes[name]} for name in sorted(self._brakes)]


def attach(model: ReadModel, now: float) -> RolloutIndex:
    index = RolloutIndex()
    model.observe(index, now)
    return index
