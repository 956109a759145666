"""Pure aggregation: connectivity, fleet summary, filters and the rollout view."""

from __future__ import annotations

import pytest

from hub.aggregate import ClusterFilter, evaluate, fleet_summary, rollout, rollout_sentence, select
from hub.connectivity import Thresholds, connectivity, describe_age
from hub.model import summarize
from hub.selector import SelectorError, parse_selector
from tests.unit.hub.factory import make_bundle, make_report

T = Thresholds(stale_after_intervals=3, offline_after_intervals=10)


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, "Online"), (90, "Online"), (91, "Stale"), (300, "Stale"), (301, "Offline"), (86400, "Offline")],
)
def test_connectivity_follows_the_announced_interval(age: float, expected: str) -> None:
    assert connectivity(last_seen=1000.0, interval_seconds=30, now=1000.0 + age, thresholds=T) == expected


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="stale-after < offline-after"):
        Thresholds(stale_after_intervals=5, offline_after_intervals=5)


def test_describe_age() -> None:
    assert [describe_age(s) for s in (5, 125, 3 * 3600 + 5, 2 * 86400)] == ["5s", "2m", "3h", "2d"]


def test_selector_terms() -> None:
    selector = parse_selector("region=eu, tier!=prod,gpu,!legacy")
    assert selector.matches({"region": "eu", "tier": "edge", "gpu": "yes"})
    assert not selector.matches({"region": "eu", "tier": "prod", "gpu": "yes"})
    assert not selector.matches({"region": "eu", "gpu": "yes", "legacy": "1"})
    assert not selector.matches({"region": "us", "gpu": "yes"})
    assert parse_selector("").matches({})
    with pytest.raises(SelectorError, match="invalid label key"):
        parse_selector("=eu")


def _views(now: float = 10_000.0) -> list:  # type: ignore[type-arg]
    summaries = [
        summarize(
            make_report("a", bundles=[make_bundle("web", "Ready", "c2")], labels={"region": "eu"}), now
        ),
        summarize(
            make_report("b", bundles=[make_bundle("web", "Failed", "c2")], labels={"region": "eu"}), now
        ),
        summarize(
            make_report("c", bundles=[make_bundle("web", "Ready", "c1")], labels={"region": "us"}), now - 400
        ),
        summarize(
            make_report("d", bundles=[], source_error="clone failed", labels={"region": "us"}), now - 100
        ),
    ]
    return evaluate(summaries, now, T)


def test_fleet_summary_counts_health_and_connectivity_separately() -> None:
    summary = fleet_summary(_views())
    assert summary.clusters == 4
    assert summary.by_health["Ready"] == 2
    assert summary.by_health["Failed"] == 2  # b's bundle, and d's source error with no bundles
    assert summary.by_connectivity == {"Offline": 1, "Stale": 1, "Online": 2}
    assert summary.ready_and_online == 1  # c is Ready but offline: not counted as fine


def test_select_filters_and_puts_attention_first() -> None:
    views = _views()
    assert [v.summary.name for v in select(views, ClusterFilter())] == ["c", "d", "b", "a"]
    eu_failed = ClusterFilter(selector=parse_selector("region=eu"), health=frozenset({"Failed"}))
    assert [v.summary.name for v in select(views, eu_failed)] == ["b"]
    offline = ClusterFilter(connectivity=frozenset({"Offline"}))
    assert [v.summary.name for v in select(views, offline)] == ["c"]


def test_rollout_counts_clusters_per_state_and_commit() -> None:
    now = 10_000.0
    reports = [make_report(f"r{i}", bundles=[make_bundle("web", "Ready", "a1b2c3d4")]) for i in range(5)]
    reports.append(make_report("f1", bundles=[make_bundle("web", "Failed", "a1b2c3d4")]))
    old = make_bundle("web", "Ready", "9f1e0d00")
    reports += [
        make_report(f"o{i}", bundles=[old.__class__(**{**old.__dict__, "desired_commit": "a1b2c3d4"})])
        for i in range(2)
    ]
    reports.append(make_report("x", bundles=[make_bundle("other")]))
    views = evaluate([summarize(r, now) for r in reports], now, T)
    r = rollout("web", views)
    assert r.clusters == 8
    assert r.target_commit == "a1b2c3d4"
    assert r.by_state == {"Failed": 1, "Ready": 7}
    assert [(g.commit, g.clusters) for g in r.by_commit] == [("a1b2c3d4", 6), ("9f1e0d00", 2)]
    assert rollout_sentence(r) == "a1b2c3d Ready on 5 of 8, 1 Failed, 2 still on 9f1e0d0"
    assert r.placements[0].cluster == "f1"  # the failing cluster first
