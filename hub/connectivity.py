"""Connectivity of a cluster, derived from the time of its last report: separate from its health."""

from __future__ import annotations

from dataclasses import dataclass

CONNECTIVITY_STATES = ("Offline", "Stale", "Online")  # worst first


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How many announced intervals may pass without a report before a cluster is Stale / Offline."""

    stale_after_intervals: float = 3.0
    offline_after_intervals: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.stale_after_intervals < self.offline_after_intervals:
            raise ValueError("thresholds must satisfy 0 < stale-after < offline-after")


def connectivity(last_seen: float, interval_seconds: int, now: float, thresholds: Thresholds) -> str:
    """``Online`` while reports arrive on time, then ``Stale``, then ``Offline``."""
    age = now - last_seen
    if age <= thresholds.stale_after_intervals * interval_seconds:
        return "Online"
    if age <= thresholds.offline_after_intervals * interval_seconds:
        return "Stale"
    return "Offline"


def describe_age(seconds: float) -> str:
    """A short human age: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
