"""The in-memory index of every cluster's current summary, shared by the writer and the readers."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import replace

from hub.model import ClusterSummary


class FleetIndex:
    """Thread-safe: the writer thread updates it after each commit; request handlers take snapshots."""

    def __init__(self, summaries: Iterable[ClusterSummary] = ()) -> None:
        self._lock = threading.Lock()
        self._clusters = {s.name: s for s in summaries}

    def snapshot(self) -> list[ClusterSummary]:
        with self._lock:
            return list(self._clusters.values())

    def get(self, name: str) -> ClusterSummary | None:
        with self._lock:
            return self._clusters.get(name)

    def put(self, summary: ClusterSummary) -> None:
        with self._lock:
            previous = self._clusters.get(summary.name)
            if previous is not None and previous.last_seen > summary.last_seen:
                summary = replace(summary, last_seen=previous.last_seen)
            self._clusters[summary.name] = summary

    def touch(self, name: str, seen_at: float) -> None:
        with self._lock:
            previous = self._clusters.get(name)
            if previous is not None and seen_at > previous.last_seen:
                self._clusters[name] = replace(previous, last_seen=seen_at)
