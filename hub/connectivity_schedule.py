"""When each cluster's connectivity next changes: the read model's clusters and a heap with one
entry per cluster at the instant its connectivity could next change (Online -> Stale -> Offline),
so that moving with time costs the clusters that are due, not the fleet.

Not thread-safe by itself: :class:`hub.readmodel.ReadModel` holds its lock around every call.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass

from hub.connectivity import Thresholds, connectivity
from hub.model import ClusterSummary


@dataclass(slots=True)
class ClusterEntry:
    summary: ClusterSummary
    connectivity: str
    scheduled: float | None = None  # when its heap entry is due (None: Offline, nothing to wait for)


class ConnectivitySchedule:
    def __init__(self, thresholds: Thresholds) -> None:
        self._thresholds = thresholds
        self._heap: list[tuple[float, str]] = []

    def connectivity(self, summary: ClusterSummary, now: float) -> str:
        return connectivity(summary.last_seen, summary.interval_seconds, now, self._thresholds)

    def _next_change(self, entry: ClusterEntry) -> float | None:
        s = entry.summary
        if entry.connectivity == "Online":
            return s.last_seen + self._thresholds.stale_after_intervals * s.interval_seconds
        if entry.connectivity == "Stale":
            return s.last_seen + self._thresholds.offline_after_intervals * s.interval_seconds
        return None

    def schedule(self, entry: ClusterEntry, now: float) -> None:
        due = self._next_change(entry)
        if due is None:
            return
        if entry.scheduled is None or due < entry.scheduled:
            entry.scheduled = due
            heapq.heappush(self._heap, (due, entry.summary.name))
        # else: the existing, earlier heap entry re-evaluates the cluster when it is due

    def due(self, entries: Mapping[str, ClusterEntry], now: float) -> list[tuple[ClusterEntry, str]]:
        """The clusters whose connectivity has changed by ``now``, each with its new connectivity
        (not yet set on the entry); those due whose connectivity held are scheduled again."""
        heap = self._heap
        moved: list[tuple[ClusterEntry, str]] = []
        while heap and heap[0][0] < now:
            due, name = heapq.heappop(heap)
            entry = entries.get(name)
            if entry is None or entry.scheduled != due:
                continue  # forgotten, or superseded by an earlier entry
            entry.scheduled = None
            conn = self.connectivity(entry.summary, now)
            if conn == entry.connectivity:
                self.schedule(entry, now)
            else:
                moved.append((entry, conn))
        return moved
