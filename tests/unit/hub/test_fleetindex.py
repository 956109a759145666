"""The operator's summaries kept at commit time equal what a scan of the fleet computes.

Random reports (states, labels, commits, chart versions, error messages naming the cluster), late
reports, forgets and clock moves go to a ReadModel with a FleetIndex attached; after each step the
index is compared with counts computed directly from the current summaries and connectivity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from hub import aggregate, fleetindex, fleetviews
from hub.connectivity import Thresholds
from hub.contract import BUNDLE_STATES
from hub.fleetindex import FleetIndex, display_state
from hub.model import ClusterSummary, summarize
from hub.readmodel import ReadModel
from tests.unit.hub.factory import make_bundle, make_report
from tests.unit.hub.replay import replay

THRESHOLDS = Thresholds()
NAMES = [f"edge-{i}" for i in range(6)]

_report = st.tuples(
    st.sampled_from(NAMES),
    st.lists(
        st.tuples(
            st.sampled_from(["web", "db"]),
            st.sampled_from(BUNDLE_STATES),
            st.sampled_from("ab"),
            st.sampled_from(["1.0", "1.1"]),
        ),
        max_size=2,
        unique_by=lambda b: b[0],
    ),
    st.sampled_from(["eu", "us"]),
    st.sampled_from(["0.1.0", "0.2.0"]),
    st.sampled_from(["timeout after {n}s on {name}", "unauthorized", ""]),
    st.sampled_from(["", "canary", "stores"]),  # the wave of the agent's own bundle ("" no waves)
)
_step = st.one_of(
    st.tuples(st.just("report"), _report),
    st.tuples(st.just("late"), st.sampled_from(NAMES)),
    st.tuples(st.just("forget"), st.sampled_from(NAMES)),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 100.0, 700.0])),
)


def _summary(
    step: tuple[str, list[tuple[str, str, str, str]], str, str, str, str], sequence: int, now: float
) -> ClusterSummary:
    name, bundles, region, agent, message, wave = step
    made = []
    for bundle, state, commit, version in bundles:
        text = message.format(n=sequence, name=name) if state in ("Failed", "Degraded") else ""
        made.append(
            replace(
                make_bundle(bundle, state, commit * 7, message=text),
                chart_version=version,
                digest=f"sha256:{commit}{version}",
            )
        )
    report = replace(
        make_report(name, sequence, made, labels={"region": region, "arch": "arm64"}), agent_version=agent
    )
    rollout = {"bundles": {fleetindex.AGENT_BUNDLE: {"wave_name": wave}}, "brake": None} if wave else None
    return replace(summarize(report, now), rollout=rollout)


def _check(index: FleetIndex, model: ReadModel, fleet: dict[str, ClusterSummary], now: float) -> None:
    model.advance(now)
    views = aggregate.evaluate(fleet.values(), now, THRESHOLDS)
    states = Counter(display_state(v.summary.health, v.connectivity) for v in views)
    by_region: dict[str, Counter[str]] = {}
    for v in views:
        by_region.setdefault(v.summary.labels["region"], Counter())[
            display_state(v.summary.health, v.connectivity)
        ] += 1
    errors: dict[str, list[str]] = {}
    error_commits: dict[str, Counter[str]] = {}
    for v in views:
        commits = {b.bundle: b.commit or "" for b in v.summary.bundles}
        for p in v.summary.problems:
            errors.setdefault(p.signature, []).append(v.summary.name)
            error_commits.setdefault(p.signature, Counter())[commits.get(p.bundle, "")] += 1
    chart: dict[str, Counter[str]] = {}
    on_commit: dict[str, dict[str, list[str]]] = {}
    for v in views:
        for b in v.summary.bundles:
            chart.setdefault(b.bundle, Counter())[b.chart_version] += 1
            on_commit.setdefault(b.bundle, {}).setdefault(b.commit or "", []).append(v.summary.name)
    with index.lock:
        assert index.states == states
        assert {k: dict(c) for k, c in index.by_label.get("region", {}).items()} == {
            k: dict(c) for k, c in by_region.items()
        }
        assert {s: g.members for s, g in index.errors.items()} == {s: sorted(m) for s, m in errors.items()}
        assert {s: g.commits for s, g in index.errors.items()} == error_commits
        assert all(g.count == len(g.members) == sum(g.bundles.values()) for g in index.errors.values())
        assert {b: dict(v.chart_versions) for b, v in index.bundles.items()} == {
            b: dict(c) for b, c in chart.items()
        }
        assert {b: v.on_commit for b, v in index.bundles.items()} == {
            b: {c: sorted(m) for c, m in commits.items()} for b, commits in on_commit.items()
        }
        assert index.agents == Counter(v.summary.agent_version for v in views)
        agents_by_region: dict[str, Counter[str]] = {}
        agents_by_wave: dict[str, Counter[str]] = {}
        for v in views:
            version = v.summary.agent_version
            agents_by_region.setdefault(v.summary.labels["region"], Counter())[version] += 1
            if wave := fleetindex.agent_wave(v.summary)[0]:
                agents_by_wave.setdefault(wave, Counter())[version] += 1
        assert index.agents_by_label.get("region", {}) == agents_by_region
        assert index.agents_by_wave == agents_by_wave
    glance = fleetviews.glance(model, "region", now, 0, 10)
    assert {g.value: g.total for g in glance.groups} == {k: sum(c.values()) for k, c in by_region.items()}


@settings(max_examples=120, deadline=None)
@given(st.lists(_step, max_size=30))
def test_fleet_index_matches_a_scan(steps: list[tuple[str, object]]) -> None:
    now = 1_000_000.0
    model = ReadModel(THRESHOLDS, (), now)
    index = fleetindex.attach(model, now)
    fleet: dict[str, ClusterSummary] = {}
    start = now
    for fleet, now in replay(model, steps, _summary, start):  # type: ignore[arg-type]
        _check(index, model, fleet, now)
    # an index attached to a model loaded from the same summaries (a restart) agrees too
    restarted = ReadModel(THRESHOLDS, fleet.values(), now)
    _check(fleetindex.attach(restarted, now), restarted, fleet, now)


def test_one_cause_on_many_clusters_is_one_group_with_its_bundles_commits_and_times() -> None:
    model = ReadModel(THRESHOLDS, (), 1000.0)
    fleetindex.attach(model, 1000.0)  # before the reports: the index follows them as they commit
    for i in range(5):
        bundle = make_bundle(
            "web", "Failed", "a1b2c3d" if i < 3 else "9f1e0d0", message=f"timeout after {i}s on edge-{i}"
        )
        model.put(summarize(make_report(f"edge-{i}", 1, [bundle]), 1000.0 + i), 1000.0 + i)
    total, groups = fleetviews.errors(model, 1010.0, 0, 10)
    assert total == 1
    group = groups[0]
    assert group.signature == "Failed web: timeout after #s on <cluster>"
    assert group.count == 5
    assert group.example == "timeout after 0s on edge-0"
    assert dict(group.commits) == {"a1b2c3d": 3, "9f1e0d0": 2}
    assert (group.first_seen, group.last_seen) == (1000.0, 1004.0)
    found = fleetviews.error_group(model, group.id, 1010.0, 1, 2)
    assert found is not None
    assert [v.summary.name for v in found[2]] == ["edge-1", "edge-2"]
    # the cause clears on one cluster: the group shrinks, an event says so
    model.put(summarize(make_report("edge-0", 2, [make_bundle("web", "Ready")]), 1020.0), 1020.0)
    assert fleetviews.errors(model, 1020.0, 0, 10)[1][0].count == 4
    index = fleetindex.of(model, 1020.0)
    assert [e.kind for e in index.history.recent(0, 3, cluster="edge-0")[1]] == ["cleared", "state", "new"]


def test_groups_with_trouble_come_first_and_the_sentence_reads_in_one_line() -> None:
    counts = {"Ready": 212, "Offline": 25, "Failed": 3}
    assert fleetviews.sentence(counts) == "212 of 240 Ready, 25 Offline, 3 Failed"
    assert fleetviews.worst(counts) == "Offline"
    assert fleetviews.worst({"Ready": 3, "Paused": 1}) is None
    assert fleetviews.state_query("Stale") == {"connectivity": "Stale"}
    assert fleetviews.state_query("Failed") == {"health": "Failed", "connectivity": "Online"}
    assert sorted(["1.9.2", "1.10.0", "1.2"], key=fleetviews.version_key, reverse=True) == [
        "1.10.0",
        "1.9.2",
        "1.2",
    ]


def test_an_error_that_stays_across_a_new_commit_moves_to_that_commit() -> None:
    model = ReadModel(THRESHOLDS, (), 1000.0)
    fleetindex.attach(model, 1000.0)  # before the reports: the index follows them as they commit
    for sequence, commit in ((1, "a1b2c3d"), (2, "9f1e0d0")):
        bundle = make_bundle("web", "Failed", commit, message=f"timeout after {sequence}s")
        model.put(summarize(make_report("edge-1", sequence, [bundle]), 1000.0 + sequence), 1000.0 + sequence)
    (group,) = fleetviews.errors(model, 1010.0, 0, 10)[1]
    assert (group.count, dict(group.commits)) == (1, {"9f1e0d0": 1})
    assert group.last_seen == 1002.0
