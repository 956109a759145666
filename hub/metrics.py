"""Prometheus metrics in the text exposition format (written by hand: a few counters and a histogram)."""

from __future__ import annotations

import bisect
import threading
from collections import Counter

from hub.aggregate import FleetSummary

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()  # by outcome: current, late, duplicate
        self.rejected: Counter[str] = Counter()  # by reason
        self._bucket_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0

    def accept(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self.accepted[outcome] += 1
            self._observe(seconds)

    def reject(self, reason: str, seconds: float) -> None:
        with self._lock:
            self.rejected[reason] += 1
            self._observe(seconds)

    def _observe(self, seconds: float) -> None:
        self._bucket_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def render(self, fleet: FleetSummary) -> str:
        with self._lock:
            lines = [
                "# HELP flotilla_hub_reports_accepted_total Status reports accepted, by outcome.",
                "# TYPE flotilla_hub_reports_accepted_total counter",
            ]
            for outcome in ("current", "late", "duplicate"):
                lines.append(
                    f'flotilla_hub_reports_accepted_total{{outcome="{outcome}"}} {self.accepted[outcome]}'
                )
            lines += [
                "# HELP flotilla_hub_reports_rejected_total Status reports rejected, by reason.",
                "# TYPE flotilla_hub_reports_rejected_total counter",
            ]
            for reason in sorted(self.rejected):
                lines.append(
                    f'flotilla_hub_reports_rejected_total{{reason="{reason}"}} {self.rejected[reason]}'
                )
            lines += [
                "# HELP flotilla_hub_ingest_duration_seconds Time to answer a report.",
                "# TYPE flotilla_hub_ingest_duration_seconds histogram",
            ]
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS, self._bucket_counts, strict=False):
                cumulative += count
                lines.append(f'flotilla_hub_ingest_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'flotilla_hub_ingest_duration_seconds_bucket{{le="+Inf"}} {self._latency_count}')
            lines.append(f"flotilla_hub_ingest_duration_seconds_sum {self._latency_sum:.6f}")
            lines.append(f"flotilla_hub_ingest_duration_seconds_count {self._latency_count}")
        lines += [
            "# HELP flotilla_hub_clusters Clusters known to the hub.",
            "# TYPE flotilla_hub_clusters gauge",
            f"flotilla_hub_clusters {fleet.clusters}",
            "# HELP flotilla_hub_clusters_by_health Clusters by their last reported health.",
            "# TYPE flotilla_hub_clusters_by_health gauge",
        ]
        lines += [f'flotilla_hub_clusters_by_health{{health="{h}"}} {n}' for h, n in fleet.by_health.items()]
        lines += [
            "# HELP flotilla_hub_clusters_by_connectivity Clusters by connectivity (Online, Stale, Offline).",
            "# TYPE flotilla_hub_clusters_by_connectivity gauge",
        ]
        lines += [
            f'flotilla_hub_clusters_by_connectivity{{connectivity="{c}"}} {n}'
            for c, n in fleet.by_connectivity.items()
        ]
        return "\n".join(lines) + "\n"
