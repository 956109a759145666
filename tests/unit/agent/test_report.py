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


def test_git_and_the_cluster_api_both_down_keep_both_errors_and_the_last_known_bundles():
    ready = build(outcome(ReleaseOutcome("web", "web", "ns", "Ready", message="3 of 3 resources ready")))
    both = build(
        outcome(
            source_error="cannot reach 127.0.0.1:9/fleet.git",
            cluster_error="cannot list Helm release secrets",
        ),
        previous=ready,
        minute=1,
    )
    assert both.errors.source == "cannot reach 127.0.0.1:9/fleet.git"
    assert both.errors.cluster_api == "cannot list Helm release secrets"
    assert both.source.error == "cannot reach 127.0.0.1:9/fleet.git"
    assert both.health == "Failed"
    assert [b.bundle for b in both.bundles] == ["web"]
    assert both.bundles[0].message.startswith("not checked this pass: the cluster API is unreachable")
    parsed = contract.parse_report(both.to_json())
    assert parsed == both
    assert [label for label, _ in parsed.errors.items()] == ["source", "cluster API"]


def test_the_cluster_api_down_alone_is_not_a_source_error():
    built = build(outcome(cluster_error="cannot list Helm release secrets: API server unreachable"))
    assert built.source.error is None
    assert built.errors.source is None
    assert built.errors.cluster_api
    assert built.health == "Failed"


def test_a_report_without_error_fields_still_parses_and_v1_peers_never_see_them():
    built = build(outcome(cluster_error="down"))
    data = built.to_json_dict()
    del data["errors"]
    assert contract.parse_report(data).errors == contract.ErrorFields()
    assert "errors" not in contract.to_v1_dict(built)


def test_resource_messages_in_the_report_do_not_repeat_the_object():
    from agent.health import ResourceHealth

    health = ResourceHealth(
        "Deployment", "ns", "web", "InProgress", "Deployment ns/web: 1 of 2 replicas available"
    )
    built = build(outcome(ReleaseOutcome("web", "web", "ns", "InProgress", non_ready=(health,))))
    assert built.bundles[0].non_ready[0].message == "1 of 2 replicas available"


def test_the_table_shows_each_error_on_its_own_line_and_messages_on_one_line():
    import io

    from agent.commands import print_report

    built = build(
        outcome(
            ReleaseOutcome(
                "web", "web", "ns", "Failed", message="UPGRADE FAILED: timed out\nwaiting for web"
            ),
            source_error="git down",
            cluster_error="api down",
        )
    )
    out = io.StringIO()
    print_report(built, out)
    lines = out.getvalue().splitlines()
    assert "source: git down" in lines
    assert "cluster API: api down" in lines
    assert any(line.endswith("UPGRADE FAILED: timed out waiting for web") for line in lines)


def test_bundles_an_interrupted_pass_did_not_reach_are_reported_as_the_last_report_had_them():
    ready = build(
        outcome(
            ReleaseOutcome("api", "api", "ns", "Ready", applied_commit=COMMIT, helm_revision=3),
            ReleaseOutcome("web", "web", "ns", "Ready", applied_commit=COMMIT, helm_revision=5),
        )
    )
    newer = "d" * 40
    stopped = build(
        outcome(
            ReleaseOutcome("api", "api", "ns", "Ready", applied_commit=newer, helm_revision=4),
            ReleaseOutcome("web", "web", "ns", "Pending", message="not checked", helm_revision=5),
            ReleaseOutcome("new", "new", "ns", "Pending", message="not checked"),
            unreached=("web", "new"),
        ),
        previous=ready,
        minute=1,
    )
    by_name = {b.bundle: b for b in stopped.bundles}
    assert list(by_name) == ["api", "web", "new"]  # none is dropped
    assert by_name["api"].applied_commit == newer
    assert (by_name["web"].state, by_name["web"].applied_commit) == ("Ready", COMMIT)
    assert by_name["web"].message.startswith("not checked this pass: the agent was stopping")
    assert by_name["new"].state == "Pending"  # never reported before: nothing to carry
    assert stopped.source.applied_commit is None  # the cluster is not at one commit
    assert not outcome(unreached=("web",)).ok  # so the commit is not marked applied
