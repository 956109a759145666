"""The incrementally maintained read model answers exactly what a scan of the whole fleet would.

Random sequences of reports, late reports, forgets and clock moves are applied to a ReadModel; after
each step its counts, cluster pages (with filters), rollups and placements are compared with the
pure reference functions of hub.aggregate over the same summaries.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import aggregate, queries, readmodel
from hub.aggregate import ClusterFilter
from hub.connectivity import Thresholds
from hub.contract import BUNDLE_STATES
from hub.model import ClusterSummary, summarize
from hub.readmodel import ReadModel
from hub.selector import parse_selector
from tests.unit.hub.factory import make_bundle, make_report
from tests.unit.hub.replay import replay

THRESHOLDS = Thresholds()
NAMES = [f"c{i}" for i in range(8)]

_report = st.tuples(
    st.sampled_from(NAMES),
    st.lists(
        st.tuples(
            st.sampled_from(["web", "db", "team/x"]), st.sampled_from(BUNDLE_STATES), st.sampled_from("ab")
        ),
        max_size=3,
        unique_by=lambda b: b[0],
    ),
    st.sampled_from(["eu", "us"]),
    st.sampled_from([10, 60]),
)
_step = st.one_of(
    st.tuples(st.just("report"), _report),
    st.tuples(st.just("late"), st.sampled_from(NAMES)),
    st.tuples(st.just("forget"), st.sampled_from(NAMES)),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 1.0, 4.5, 25.0, 100.0, 700.0])),
)
_FILTERS = [
    ClusterFilter(),
    ClusterFilter(health=frozenset({"Failed", "Ready"})),
    ClusterFilter(connectivity=frozenset({"Offline"})),
    ClusterFilter(selector=parse_selector("region=eu")),
    ClusterFilter(selector=parse_selector("region!=eu"), connectivity=frozenset({"Online", "Stale"})),
    ClusterFilter(selector=parse_selector("region,!tier")),
    ClusterFilter(selector=parse_selector("tier")),
    ClusterFilter(selector=parse_selector("region=eu,region!=us"), health=frozenset({"Ready"})),
]


def _summary(
    step: tuple[str, list[tuple[str, str, str]], str, int], sequence: int, now: float
) -> ClusterSummary:
    name, bundles, region, interval = step
    report = make_report(
        name,
        sequence,
        [
            make_bundle(b, state, commit, message="boom 42" if state == "Failed" else "")
            for b, state, commit in bundles
        ],
        labels={"region": region},
        interval_seconds=interval,
    )
    return summarize(report, now)


def _check(model: ReadModel, fleet: dict[str, ClusterSummary], now: float) -> None:
    views = aggregate.evaluate(fleet.values(), now, THRESHOLDS)
    assert model.summary(now) == aggregate.fleet_summary(views)
    for wanted in _FILTERS:
        expected = aggregate.select(views, wanted)
        page = model.clusters(wanted, 1, 3, now)
        assert page.total == len(expected)
        assert [v.summary.name for v in page.views] == [v.summary.name for v in expected[1:4]]
        assert [v.connectivity for v in page.views] == [v.connectivity for v in expected[1:4]]
    expected_rollouts = {r.bundle: r for r in aggregate.rollouts(views)}
    assert model.bundle_names() == sorted(expected_rollouts)
    for name, expected_rollout in expected_rollouts.items():
        got = queries.rollout(model, name, now, 0, 100)
        assert got is not None
        assert got == expected_rollout, name


@pytest.mark.parametrize("bulk_moves", [1, 10**9], ids=["bucket-rebuilds", "bucket-edits"])
@settings(max_examples=120, deadline=None)
@given(steps=st.lists(_step, max_size=40))
def test_incremental_read_model_matches_a_full_scan(bulk_moves: int, steps: list[tuple[str, object]]) -> None:
    saved, readmodel.BULK_MOVES = readmodel.BULK_MOVES, bulk_moves
    try:
        _run(steps)
    finally:
        readmodel.BULK_MOVES = saved


def _run(steps: list[tuple[str, object]]) -> None:
    now = 1_000_000.0
    model = ReadModel(THRESHOLDS, (), now)
    fleet: dict[str, ClusterSummary] = {}
    start = now
    for fleet, now in replay(model, steps, _summary, start):  # type: ignore[arg-type]
        _check(model, fleet, now)
    # a restart loads the same state (its indexes built in bulk)
    loaded = ReadModel(THRESHOLDS, fleet.values(), now)
    _check(loaded, fleet, now)
    assert loaded.label_counts("region") == model.label_counts("region")
    assert loaded.cause_counts() == model.cause_counts()


def test_label_and_cause_groups() -> None:
    model = ReadModel(THRESHOLDS)
    for index, (region, state) in enumerate([("eu", "Failed"), ("eu", "Ready"), ("us", "Failed")]):
        report = make_report(
            f"c{index}",
            1,
            [
                make_bundle(
                    "web",
                    state,
                    message=f"pull image: timeout after {index + 30}s" if state == "Failed" else "",
                )
            ],
            labels={"region": region},
        )
        model.put(summarize(report, 0.0), 0.0)
    assert model.label_counts("region") == {"eu": 2, "us": 1}
    assert model.cause_counts() == [("Failed web: pull image: timeout after #s", 2)]
    model.forget("c0")
    assert model.label_counts("region") == {"eu": 1, "us": 1}
    assert model.cause_counts() == [("Failed web: pull image: timeout after #s", 1)]
