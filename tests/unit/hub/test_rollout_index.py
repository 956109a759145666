"""The staged-rollout members kept at commit time equal what a scan of the fleet computes.

Random reports (with and without staged-rollout facts, waves, holding, failed, brakes), late
reports, forgets and clock moves go to a ReadModel with a RolloutIndex attached; after each step the
index's members, brakes and freshly reported commits are compared with a direct scan.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub import aggregate, rollout_index
from hub.connectivity import Thresholds
from hub.model import ClusterSummary, summarize
from hub.readmodel import ReadModel
from hub.rollout_index import member_of
from tests.unit.hub.factory import make_bundle, make_report
from tests.unit.hub.replay import replay

THRESHOLDS = Thresholds()
NAMES = [f"edge-{i}" for i in range(5)]

_facts = st.fixed_dictionaries(
    {
        "wave": st.integers(1, 3),
        "commit": st.sampled_from(["c1", "c2"]),
        "holding": st.booleans(),
        "failed": st.booleans(),
        "fresh": st.booleans(),
    }
)
_report = st.tuples(
    st.sampled_from(NAMES),
    st.dictionaries(st.sampled_from(["web", "db"]), _facts, max_size=2),
    st.booleans(),  # the deletion brake refused a prune
)
_step = st.one_of(
    st.tuples(st.just("report"), _report),
    st.tuples(st.just("late"), st.sampled_from(NAMES)),
    st.tuples(st.just("forget"), st.sampled_from(NAMES)),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 100.0, 700.0])),
)


def _summary(step: tuple[str, dict[str, dict[str, Any]], bool], sequence: int, now: float) -> ClusterSummary:
    name, staged, brake = step
    report = make_report(name, sequence, [make_bundle(b, "Ready") for b in staged])
    rollout: dict[str, Any] = {"bundles": staged} if staged else {}
    if brake:
        rollout["brake"] = {"prune_id": "p1", "releases": 3}
    return replace(summarize(report, now), rollout=rollout or None)


@settings(max_examples=60, deadline=None)
@given(st.lists(_step, max_size=30))
def test_members_brakes_and_reported_commits_match_a_scan(steps: list[tuple[str, object]]) -> None:
    now = 1_800_000_000.0
    model = ReadModel(THRESHOLDS, (), now)
    index = rollout_index.attach(model, now)
    handed: set[tuple[str, str]] = set()  # what the book has been given to start, over all steps
    for fleet, at in replay(model, steps, _summary, now):  # type: ignore[arg-type]
        model.advance(at)
        views = aggregate.evaluate(fleet.values(), at, THRESHOLDS)
        for bundle in ("web", "db"):
            expected = {
                v.summary.name: member_of(v.summary, bundle, facts, v.connectivity != "Offline")
                for v in views
                if (facts := ((v.summary.rollout or {}).get("bundles") or {}).get(bundle)) is not None
            }
            assert {m.cluster: m for m in index.members(bundle)} == expected
        brakes = sorted(s.name for s in fleet.values() if (s.rollout or {}).get("brake"))
        assert [b["cluster"] for b in index.brakes()] == brakes
        handed |= {(b, c) for b, c, _ in index.reported()}
        fresh_now = {
            (bundle, facts["commit"])
            for s in fleet.values()
            for bundle, facts in ((s.rollout or {}).get("bundles") or {}).items()
            if facts["fresh"]
        }
        assert fresh_now <= handed  # every commit a fresh cluster reports reaches the book
