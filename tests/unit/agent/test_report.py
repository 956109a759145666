"""Building the versioned status report from a pass's outcome."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

from agent import report
from agent.fleet import Problem
from agent.reconcile import PassOutcome, ReleaseOutcome
from hub import contract

COMMIT = "c" * 40


def outcome(*releases: ReleaseOutcome, **fields: object) -> PassOutcome:
    return PassOutcome(cluster="edge-1", labels={"region": "eu"}, commit=COMMIT, releases=releases, **fields)


def build(result: PassOutcome, previous: contract.StatusReport | None = None, minute: int = 0):
    return report.build(
        result,
        sequence=7,
        source_url="https://git.example/fleet.git",
        ref="branch main",
        interval_seconds=60,
        previous=previous,
        now=datetime(2026, 11, 27, 12, minute, tzinfo=UTC),
    )


def test_report_round_trips_through_the_hubs_parser_and_keeps_cluster_health():
    built = build(
        outcome(
            ReleaseOutcome(
                "web", "web", "ns", "Ready", applied_commit=COMMIT, resources_ready=3, resources_total=3
            ),
            ReleaseOutcome("api", "api", "ns", "Failed", message="Error: boom"),
        )
    )
    parsed = contract.parse_report(built.to_json())
    assert parsed == built
    assert parsed.health == "Failed"
    assert parsed.labels == {"region": "eu"}
    assert parsed.source.desired_commit == COMMIT
    assert parsed.agent_arch == platform.machine()  # what the hub shows as the agent's architecture


def test_last_transition_moves_only_when_the_state_changes():
    first = build(outcome(ReleaseOutcome("web", "web", "ns", "InProgress")), minute=0)
    same = build(outcome(ReleaseOutcome("web", "web", "ns", "InProgress")), previous=first, minute=1)
    changed = build(outcome(ReleaseOutcome("web", "web", "ns", "Ready")), previous=same, minute=2)
    assert same.bundles[0].last_transition == first.bundles[0].last_transition == "2026-11-27T12:00:00Z"
    assert changed.bundles[0].last_transition == "2026-11-27T12:02:00Z"


def test_an_invalid_repo_is_a_source_error_listing_file_and_line():
    built = build(outcome(problems=(Problem("bundles/web/bundle.yaml", 4, "unknown field 'namepsace'"),)))
    assert built.health == "Failed"
    assert built.source.error is not None
    assert "invalid" in built.source.error
    assert [(p.file, p.line) for p in built.source.errors] == [("bundles/web/bundle.yaml", 4)]


def test_the_last_report_is_kept_in_the_state_dir_and_a_corrupt_file_reads_as_none(tmp_path):
    built = build(outcome(ReleaseOutcome("web", "web", "ns", "Ready")))
    report.save(tmp_path, built)
    assert report.load_last(tmp_path) == built
    (tmp_path / "last-report.json").write_text("{ torn")
    assert report.load_last(tmp_path) is None


def test_the_cluster_is_at_a_commit_when_every_active_bundle_is_and_mixed_commits_show_none():
    old = "0" * 40
    at_commit = build(
        outcome(
            ReleaseOutcome("web", "web", "ns", "Ready", applied_commit=COMMIT),
            ReleaseOutcome("ota", "ota", "ns", "Paused", applied_commit=None),
        )
    )
    assert at_commit.source.applied_commit == COMMIT
    mixed = build(
        outcome(
            ReleaseOutcome("web", "web", "ns", "Ready", applied_commit=COMMIT),
            ReleaseOutcome("api", "api", "ns", "InProgress", applied_commit=old),
        )
    )
    assert mixed.source.applied_commit is None
