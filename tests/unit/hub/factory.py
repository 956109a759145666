"""Builders for status reports used by the hub's tests and benchmark."""

from __future__ import annotations

from hub.contract import (
    CURRENT_VERSION,
    BundleStatus,
    Problem,
    ResourceStatus,
    SourceStatus,
    StatusReport,
)


def make_bundle(
    name: str = "web",
    state: str = "Ready",
    commit: str = "a1b2c3d",
    *,
    message: str = "",
    non_ready: list[ResourceStatus] | None = None,
) -> BundleStatus:
    return BundleStatus(
        bundle=name,
        release=name,
        namespace="apps",
        state=state,
        desired_commit=commit,
        applied_commit=commit,
        chart="charts/" + name,
        chart_version="1.2.3",
        digest="sha256:" + "0" * 64,
        values_digest="sha256:" + "1" * 64,
        helm_revision=3,
        resources_ready=2 if state == "Ready" else 1,
        resources_total=2,
        non_ready=non_ready or [],
        modified=[],
        message=message,
        last_transition="2026-01-01T00:00:00Z",
    )


def make_report(
    cluster: str = "edge-1",
    sequence: int = 1,
    bundles: list[BundleStatus] | None = None,
    *,
    labels: dict[str, str] | None = None,
    interval_seconds: int = 30,
    generated_at: str = "2026-01-01T00:00:00Z",
    source_error: str | None = None,
    commit: str = "a1b2c3d",
) -> StatusReport:
    return StatusReport(
        version=CURRENT_VERSION,
        cluster=cluster,
        sequence=sequence,
        generated_at=generated_at,
        agent_version="0.1.0",
        interval_seconds=interval_seconds,
        labels=labels if labels is not None else {"region": "eu", "tier": "edge"},
        source=SourceStatus(
            url="https://git.example/fleet.git",
            ref="main",
            desired_commit=commit,
            applied_commit=commit,
            error=source_error,
            errors=[Problem(file="clusters/x.yaml", line=3, message="bad")] if source_error else [],
        ),
        bundles=bundles if bundles is not None else [make_bundle(commit=commit)],
    )
