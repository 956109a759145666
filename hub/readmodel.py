"""The read side of the hub: every cluster's summary, indexed so that no read scans the fleet.

The ingest writer applies each committed report here (``put``/``touch``/``forget``); readers ask
for counts and pages. What a read needs is kept ready at commit time:

* clusters in 21 buckets by (connectivity, health), each sorted by name: the attention-first list
  (offline first, then worst health, then name) is a walk over the buckets, a page costs its size;
* the fleet's counts are the buckets' lengths;
* per-bundle rollups (:mod:`hub.rollups`), a label index and a cause index (clusters that fail the
  same way, :mod:`hub.label_index`), for grouping by label and by error signature;
* connectivity moves with time, not with reports: each cluster has one entry in a heap at the
  instant its connectivity could next change (:mod:`hub.connectivity_schedule`), and
  ``advance(now)`` handles the ones that are due.

One lock guards the structures; it is held for bookkeeping and for copying a page's worth of
references, never while a page is rendered or encoded.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from hub.aggregate import ClusterFilter, ClusterView, FleetSummary
from hub.connectivity import CONNECTIVITY_STATES, Thresholds
from hub.connectivity_schedule import ClusterEntry, ConnectivitySchedule
from hub.contract import BUNDLE_STATES
from hub.label_index import LabelIndex
from hub.model import ClusterSummary
from hub.rollups import BundleRollup, Rollups, page_of

if TYPE_CHECKING:
    from hub.fleetindex import Observer

BULK_MOVES = 256  # connectivity changes at once past which buckets are rebuilt rather than edited
_BUCKETS = tuple((conn, health) for conn in CONNECTIVITY_STATES for health in BUNDLE_STATES)


@dataclass(frozen=True, slots=True)
class ClusterPage:
    total: int
    views: list[ClusterView]


class ReadModel:
    def __init__(
        self, thresholds: Thresholds, summaries: Iterable[ClusterSummary] = (), now: float = 0.0
    ) -> None:
        self._schedule = ConnectivitySchedule(thresholds)
        self._lock = threading.Lock()
        self._entries: dict[str, ClusterEntry] = {}
        self._buckets: dict[tuple[str, str], list[str]] = {key: [] for key in _BUCKETS}
        self.rollups = Rollups()
        self.version = 0  # bumped on every change readers could see
        self.observers: list[Observer] = []  # further summaries kept at commit time (hub.fleetindex)
        for summary in summaries:
            entry = ClusterEntry(summary, self._schedule.connectivity(summary, now))
            name = summary.name
            self._entries[name] = entry
            self._buckets[(entry.connectivity, summary.health)].append(name)
            self._schedule.schedule(entry, now)
        self._index = LabelIndex(entry.summary for entry in self._entries.values())
        for bucket in self._buckets.values():
            bucket.sort()
        self.rollups.load((e.summary, e.connectivity == "Offline") for e in self._entries.values())

    # --- writer side ------------------------------------------------------------------------------

    def put(self, summary: ClusterSummary, now: float, *, newer_only: bool = False) -> None:
        """Make ``summary`` its cluster's current state (it committed as the newest report); with
        ``newer_only``, only if its sequence is above the one held (replicas apply in any order)."""
        with self._lock:
            previous = self._entries.get(summary.name)
            if newer_only and previous is not None and previous.summary.sequence >= summary.sequence:
                if summary.last_seen > previous.summary.last_seen:
                    self._set(replace(previous.summary, last_seen=summary.last_seen), now, previous)
                return
            if previous is not None and previous.summary.last_seen > summary.last_seen:
                summary = replace(summary, last_seen=previous.summary.last_seen)
            self._set(summary, now, previous)

    def touch(self, name: str, seen_at: float, now: float) -> None:
        """A late report: a sign of life that leaves the current state as it is."""
        with self._lock:
            previous = self._entries.get(name)
            if previous is not None and seen_at > previous.summary.last_seen:
                self._set(replace(previous.summary, last_seen=seen_at), now, previous)

    def observe(self, observer: Observer, now: float) -> None:
        """Have ``observer`` told of every change from now on, after it has been told of every cluster."""
        with self._lock:
            observer.load([(entry.summary, entry.connectivity) for entry in self._entries.values()], now)
            self.observers.append(observer)

    def forget(self, name: str) -> bool:
        with self._lock:
            entry = self._entries.pop(name, None)
            if entry is None:
                return False
            for observer in self.observers:
                observer.changed(entry.summary, entry.connectivity, None, None, None)
            self._unbucket(entry)
            self._index.update(entry.summary, add=False)
            self.rollups.remove(entry.summary, entry.connectivity == "Offline")
            self.version += 1
            return True

    def _set(self, summary: ClusterSummary, now: float, previous: ClusterEntry | None) -> None:
        conn = self._schedule.connectivity(summary, now)
        old_summary, old_conn = (previous.summary, previous.connectivity) if previous else (None, None)
        if previous is None:
            entry = ClusterEntry(summary, conn)
            self._entries[summary.name] = entry
            bisect.insort(self._buckets[(conn, summary.health)], summary.name)
            self._index.update(summary, add=True)
            self.rollups.add(summary, conn == "Offline")
        else:
            entry = previous
            old = previous.summary
            if (previous.connectivity, old.health) != (conn, summary.health):
                self._unbucket(previous)
                bisect.insort(self._buckets[(conn, summary.health)], summary.name)
            if old.labels != summary.labels or old.cause != summary.cause:
                self._index.update(old, add=False)
                self._index.update(summary, add=True)
            was_offline, offline = previous.connectivity == "Offline", conn == "Offline"
            if old.bundles != summary.bundles:
                self.rollups.remove(old, was_offline)
                self.rollups.add(summary, offline)
            elif was_offline != offline:  # back online: counts only, the member lists stay as they are
                self.rollups.set_offline(summary, offline)
            entry.summary = summary
            entry.connectivity = conn
        for observer in self.observers:
            observer.changed(old_summary, old_conn, summary, conn, now)
        self._schedule.schedule(entry, now)
        self.version += 1

    # --- time ---------------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply the connectivity changes due by ``now`` (Online -> Stale -> Offline).

        Many at once (a hub restarted after an outage: the whole fleet turns Stale) are moved between
        buckets in bulk, so the cost stays linear in the fleet, not quadratic.
        """
        with self._lock:
            moved = self._schedule.due(self._entries, now)
            if not moved:
                return
            if len(moved) < BULK_MOVES:
                for entry, conn in moved:
                    self._unbucket(entry)
                    bisect.insort(self._buckets[(conn, entry.summary.health)], entry.summary.name)
            else:
                self._move_in_bulk(moved)
            for entry, conn in moved:
                if (entry.connectivity == "Offline") != (conn == "Offline"):
                    self.rollups.set_offline(entry.summary, conn == "Offline")
                for observer in self.observers:
                    observer.changed(entry.summary, entry.connectivity, entry.summary, conn, now)
                entry.connectivity = conn
                self._schedule.schedule(entry, now)
            self.version += len(moved)

    def _move_in_bulk(self, moved: list[tuple[ClusterEntry, str]]) -> None:
        leaving: dict[tuple[str, str], set[str]] = {}
        arriving: dict[tuple[str, str], list[str]] = {}
        for entry, conn in moved:
            health, name = entry.summary.health, entry.summary.name
            leaving.setdefault((entry.connectivity, health), set()).add(name)
            arriving.setdefault((conn, health), []).append(name)
        for key, names in leaving.items():
            self._buckets[key] = [n for n in self._buckets[key] if n not in names]
        for key, added in arriving.items():
            bucket = self._buckets[key]
            bucket.extend(added)
            bucket.sort()

    # --- buckets ------------------------------------------------------------------------------------

    def _unbucket(self, entry: ClusterEntry) -> None:
        bucket = self._buckets[(entry.connectivity, entry.summary.health)]
        index = bisect.bisect_left(bucket, entry.summary.name)
        if index < len(bucket) and bucket[index] == entry.summary.name:
            del bucket[index]

    # --- reader side ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def current(self, name: str) -> ClusterSummary | None:
        entry = self._entries.get(name)  # one dict read: atomic under the GIL
        return None if entry is None else entry.summary

    def names(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def snapshot(self) -> list[ClusterSummary]:
        with self._lock:
            return [entry.summary for entry in self._entries.values()]

    def all_views(self, now: float) -> list[ClusterView]:
        self.advance(now)
        with self._lock:
            return [self._view(entry, now) for entry in self._entries.values()]

    def _view(self, entry: ClusterEntry, now: float) -> ClusterView:
        return ClusterView(entry.summary, entry.connectivity, now - entry.summary.last_seen)

    def view(self, name: str, now: float) -> ClusterView | None:
        self.advance(now)
        with self._lock:
            entry = self._entries.get(name)
            return None if entry is None else self._view(entry, now)

    def summary(self, now: float) -> FleetSummary:
        self.advance(now)
        with self._lock:
            sizes = {key: len(bucket) for key, bucket in self._buckets.items()}
        return FleetSummary(
            clusters=sum(sizes.values()),
            by_health={h: sum(sizes[(c, h)] for c in CONNECTIVITY_STATES) for h in BUNDLE_STATES},
            by_connectivity={c: sum(sizes[(c, h)] for h in BUNDLE_STATES) for c in CONNECTIVITY_STATES},
            ready_and_online=sizes[("Online", "Ready")],
            states={
                "Offline": sum(sizes[("Offline", h)] for h in BUNDLE_STATES),
                "Stale": sum(sizes[("Stale", h)] for h in BUNDLE_STATES),
                **{h: sizes[("Online", h)] for h in BUNDLE_STATES},
            },
        )

    def clusters(self, wanted: ClusterFilter, offset: int, limit: int, now: float) -> ClusterPage:
        """One page of the matching clusters, attention first. Without a label selector the cost is the
        page's, not the fleet's; with one, each requirement is a set membership test per cluster of the
        chosen buckets (the label index answers it, no labels are read)."""
        self.advance(now)
        keys = [
            key
            for key in _BUCKETS
            if (not wanted.connectivity or key[0] in wanted.connectivity)
            and (not wanted.health or key[1] in wanted.health)
        ]
        if not wanted.selector.requirements:
            with self._lock:
                total = sum(len(self._buckets[key]) for key in keys)
                names = page_of((self._buckets[key] for key in keys), offset, limit)
                entries = [self._entries[name] for name in names]
            return ClusterPage(total, [self._view(entry, now) for entry in entries])
        with self._lock:  # copy references only; matching happens outside the lock
            tests = [
                self._index.label_set(r.key, r.value if r.operator in ("=", "!=") else None)
                for r in wanted.selector.requirements
            ]
            pools = [list(self._buckets[key]) for key in keys]
        wanted_in = [r.operator in ("=", "exists") for r in wanted.selector.requirements]
        matching = [name for pool in pools for name in pool]
        for members, wanted_member in zip(tests, wanted_in, strict=True):  # one C-speed pass per term
            if wanted_member:
                matching = [name for name in matching if name in members]
            else:
                matching = [name for name in matching if name not in members]
        entries = [
            e for name in matching[offset : offset + limit] if (e := self._entries.get(name)) is not None
        ]
        return ClusterPage(len(matching), [self._view(e, now) for e in entries])

    def rollup(self, bundle: str, now: float) -> BundleRollup | None:
        self.advance(now)
        with self._lock:
            return self.rollups.copy_of(bundle)

    def bundle_names(self) -> list[str]:
        with self._lock:
            return list(self.rollups.names)

    def placements(self, bundle: str, offset: int, limit: int, now: float) -> list[ClusterView]:
        """A page of the clusters running ``bundle``, worst state first, then by name."""
        self.advance(now)
        with self._lock:
            names = self.rollups.placement_window(bundle, offset, limit)
            return [self._view(self._entries[name], now) for name in names if name in self._entries]

    def label_counts(self, key: str) -> dict[str, int]:
        """How many clusters carry each value of label ``key`` (for grouping the page by label)."""
        with self._lock:
            return self._index.label_counts(key)

    def cause_counts(self, top: int = 20) -> list[tuple[str, int]]:
        """The most common causes of trouble and how many clusters share each."""
        with self._lock:
            counts = self._index.cause_sizes()
        counts.sort(key=lambda item: (-item[1], item[0]))
        return counts[:top]
