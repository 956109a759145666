"""The hub's compact in-memory view of each cluster's latest report (the full report stays in SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.contract import StatusReport


@dataclass(frozen=True, slots=True)
class BundleBrief:
    bundle: str
    state: str
    commit: str | None  # applied
    desired_commit: str | None
    chart_version: str


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    name: str
    sequence: int
    health: str  # as last reported: an Offline cluster keeps its last known health
    last_seen: float  # hub clock (epoch seconds) of the last accepted report, current or late
    reported_at: float  # hub clock when the current (highest-sequence) report arrived
    interval_seconds: int
    labels: dict[str, str]
    commit: str | None
    desired_commit: str | None
    agent_version: str
    source_error: str | None
    bundles: tuple[BundleBrief, ...]
    rollout: dict[str, Any] | None = None  # the report's staged-rollout facts and refused prune


def summarize(report: StatusReport, received_at: float) -> ClusterSummary:
    return ClusterSummary(
        name=report.cluster,
        sequence=report.sequence,
        health=report.health,
        last_seen=received_at,
        reported_at=received_at,
        interval_seconds=report.interval_seconds,
        labels=report.labels,
        commit=report.source.applied_commit,
        desired_commit=report.source.desired_commit,
        agent_version=report.agent_version,
        source_error=report.source.error,
        bundles=tuple(
            BundleBrief(b.bundle, b.state, b.applied_commit, b.desired_commit, b.chart_version)
            for b in report.bundles
        ),
        rollout=report.rollout,
    )
