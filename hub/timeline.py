"""History for people: the fleet's state over time and what happened, and one cluster's timeline.

The fleet's history is kept in memory, bounded: a sample of the clusters per display state every
SAMPLE_SECONDS for 7 days (2,016 samples of a few integers) and the last MAX_EVENTS events
(state changes, commits applied, errors appearing and clearing). Each new sample and event also
goes to a journal the writer saves (:mod:`hub.history_store`), so a restart resumes the history.
A cluster's timeline is computed from its retained history (``hub.reportstore.history``: at
most ``--history-reports`` entries, none older than ``--history-days``), gaps between reports
becoming Stale and Offline exactly as the hub judges connectivity.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from hub.connectivity import Thresholds

if TYPE_CHECKING:
    from hub.history_store import Journal, Stored
    from hub.model import ClusterSummary, HistoryEntry

SAMPLE_SECONDS = 300
WEEK = 7 * 86400
MAX_EVENTS = 1000
WINDOWS = {"24h": 86400, "7d": WEEK}


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    cluster: str
    kind: str  # state | commit | error | cleared | new | forgotten
    text: str
    state: str  # the display state after the event (for its colour and its text)


@dataclass(frozen=True, slots=True)
class Span:
    start: float
    end: float
    state: str


class FleetHistory:
    """Not thread-safe by itself: :class:`hub.fleetindex.FleetIndex` holds its lock around every call."""

    def __init__(self, journal: Journal | None = None, stored: Stored | None = None) -> None:
        self.samples: deque[tuple[float, dict[str, int]]] = deque(maxlen=WEEK // SAMPLE_SECONDS)
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._journal = journal
        if stored is not None:  # what the hub saw before it restarted
            self.samples.extend(stored.samples)
            self.events.extend(stored.events)

    def sample(self, states: Mapping[str, int], now: float) -> None:
        if not self.samples or now - self.samples[-1][0] >= SAMPLE_SECONDS:
            taken = dict(states)
            self.samples.append((now, taken))
            if self._journal is not None:
                self._journal.sample(now, taken)

    def _add(self, event: Event) -> None:
        self.events.append(event)
        if self._journal is not None:
            self._journal.event(event)

    def record(
        self,
        old: ClusterSummary | None,
        before: str | None,
        new: ClusterSummary | None,
        after: str | None,
        now: float,
    ) -> None:
        known = new or old
        name = known.name if known else ""
        if old is None and new is not None:
            self._add(Event(now, name, "new", f"first report: {after}", after or ""))
        elif new is None:
            self._add(Event(now, name, "forgotten", "forgotten", before or ""))
        if old is None or new is None or after is None:
            return
        if before == after and old.commit == new.commit and old.problems == new.problems:
            return
        if before != after:
            self._add(Event(now, name, "state", f"{before} → {after}", after))
        if old.commit != new.commit and new.commit:
            was = f" (was {old.commit[:12]})" if old.commit else ""
            self._add(Event(now, name, "commit", f"applied {new.commit[:12]}{was}", after))
        seen = {p.signature for p in old.problems}
        now_seen = {p.signature for p in new.problems}
        for signature in sorted(now_seen - seen):
            self._add(Event(now, name, "error", f"error: {signature}", after))
        for signature in sorted(seen - now_seen):
            self._add(Event(now, name, "cleared", f"cleared: {signature}", after))

    def columns(self, seconds: float, now: float, count: int) -> list[tuple[float, dict[str, int] | None]]:
        """``count`` columns over the last ``seconds``: each the newest sample by its end (None: no data)."""
        step = seconds / count
        samples = list(self.samples)
        out: list[tuple[float, dict[str, int] | None]] = []
        index = 0
        latest: dict[str, int] | None = None
        start = now - seconds
        for column in range(count):
            end = start + (column + 1) * step
            while index < len(samples) and samples[index][0] <= end:
                latest = samples[index][1]
                index += 1
            out.append((end, latest))
        return out

    def recent(self, offset: int, limit: int, cluster: str | None = None) -> tuple[int, list[Event]]:
        events = [e for e in reversed(self.events) if cluster is None or e.cluster == cluster]
        return len(events), events[offset : offset + limit]


def cluster_spans(
    entries: Iterable[HistoryEntry], interval: int, thresholds: Thresholds, start: float, now: float
) -> list[Span]:
    """One cluster's states from ``start`` to ``now``: each report's health until the next report,
    Stale and Offline over gaps, ``NoData`` before the oldest retained report."""
    ordered = sorted(entries, key=lambda h: h.received_at)
    spans: list[Span] = []

    def add(a: float, b: float, state: str) -> None:
        a, b = max(a, start), min(b, now)
        if b <= a:
            return
        if spans and spans[-1].state == state and spans[-1].end >= a:
            spans[-1] = Span(spans[-1].start, b, state)
        else:
            spans.append(Span(a, b, state))

    if not ordered:
        return [Span(start, now, "NoData")]
    add(start, ordered[0].received_at, "NoData")
    stale_after = thresholds.stale_after_intervals * interval
    offline_after = thresholds.offline_after_intervals * interval
    for index, entry in enumerate(ordered):
        until = ordered[index + 1].received_at if index + 1 < len(ordered) else now
        at = entry.received_at
        add(at, min(until, at + stale_after), entry.health or "NoData")
        add(at + stale_after, min(until, at + offline_after), "Stale")
        add(at + offline_after, until, "Offline")
    return spans


def cluster_events(
    entries: Sequence[HistoryEntry], interval: int, thresholds: Thresholds, now: float
) -> list[Event]:
    """What the retained history says happened, newest first: health and commit changes, silences."""
    ordered = sorted(entries, key=lambda h: h.received_at)
    offline_after = thresholds.offline_after_intervals * interval
    events: list[Event] = []
    for previous, entry in pairwise(ordered):
        health = entry.health or ""
        if entry.received_at - previous.received_at > offline_after:
            events.append(Event(previous.received_at + offline_after, "", "state", "went Offline", "Offline"))
            events.append(Event(entry.received_at, "", "state", f"back online: {health}", health))
        if previous.health != entry.health:
            events.append(Event(entry.received_at, "", "state", f"{previous.health} → {health}", health))
        if previous.commit != entry.commit and entry.commit:
            events.append(Event(entry.received_at, "", "commit", f"applied {entry.commit[:12]}", health))
    if ordered and now - ordered[-1].received_at > offline_after:
        events.append(Event(ordered[-1].received_at + offline_after, "", "state", "went Offline", "Offline"))
    events.sort(key=lambda e: -e.at)
    return events
