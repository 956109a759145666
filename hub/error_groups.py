"""Errors grouped by cause, kept as reports commit: one group per normalised signature
(:mod:`hub.signatures`) with its count, bundles, commits, first and last sighting, an example and the
affected clusters (sorted, so a page of them costs its size). First sightings go to the history
journal, so a restart keeps them (:mod:`hub.history_store`).

Not thread-safe by itself: :class:`hub.fleetindex.FleetIndex` holds its lock around every call.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hub.model import ClusterSummary
from hub.rollups import bump
from hub.signatures import ProblemBrief, signature_id

if TYPE_CHECKING:
    from hub.history_store import Journal


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


def insort(members: list[str], name: str) -> None:
    index = bisect.bisect_left(members, name)
    if index == len(members) or members[index] != name:
        members.insert(index, name)


def drop(members: list[str], name: str) -> None:
    index = bisect.bisect_left(members, name)
    if index < len(members) and members[index] == name:
        del members[index]


def _same_errors(old: ClusterSummary, new: ClusterSummary) -> bool:
    if len(old.problems) != len(new.problems):
        return False
    return all(a.signature == b.signature for a, b in zip(old.problems, new.problems, strict=True))


class ErrorGroups:
    def __init__(self, journal: Journal | None = None, first_seen: dict[str, float] | None = None) -> None:
        self.errors: dict[str, ErrorGroup] = {}
        self.error_ids: dict[str, str] = {}  # signature id -> signature
        self._journal = journal
        self._first_seen = dict(first_seen or {})  # sightings before a restart (for the load only)
        self._loading = False

    def loading(self) -> None:
        """A bulk load begins: members are appended, and sorted by :meth:`loaded`."""
        self._loading = True

    def loaded(self) -> None:
        for group in self.errors.values():
            group.members.sort()
            group.first_seen = min(group.first_seen, self._first_seen.get(group.signature, group.first_seen))
        if self._journal is not None:  # the stored sightings become exactly the current groups'
            for signature in self._first_seen.keys() - self.errors.keys():
                self._journal.signature(signature, None)
            for group in self.errors.values():
                if self._first_seen.get(group.signature) != group.first_seen:
                    self._journal.signature(group.signature, group.first_seen)
        self._first_seen = {}
        self._loading = False

    def changed(self, old: ClusterSummary | None, new: ClusterSummary | None) -> None:
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
            self._sighted(group.signature, group.first_seen)
        commit = commits.get(problem.bundle) if problem.bundle else summary.commit
        bump(group.bundles, problem.bundle or "(source)", delta)
        bump(group.commits, commit or "", delta)
        if delta > 0:
            if self._loading:
                group.members.append(summary.name)
            else:
                insort(group.members, summary.name)
            group.count = len(group.members)
            if summary.reported_at < group.first_seen:
                group.first_seen = summary.reported_at
                self._sighted(group.signature, group.first_seen)
        else:
            drop(group.members, summary.name)
            group.count = len(group.members)
            if not group.members:
                del self.errors[problem.signature]
                self.error_ids.pop(group.id, None)
                self._sighted(group.signature, None)

    def _sighted(self, signature: str, first_seen: float | None) -> None:
        """Journal a group's first sighting (None: gone); the load journals its own in one go."""
        if self._journal is not None and not self._loading:
            self._journal.signature(signature, first_seen)
