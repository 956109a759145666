"""One cluster's timeline from its retained history, and the fleet's bounded samples and events."""

from __future__ import annotations

from hub.connectivity import Thresholds
from hub.model import HistoryEntry, summarize
from hub.timeline import MAX_EVENTS, FleetHistory, Span, cluster_events, cluster_spans
from tests.unit.hub.factory import make_bundle, make_report

T = Thresholds(stale_after_intervals=3, offline_after_intervals=10)


def test_gaps_between_reports_become_stale_then_offline() -> None:
    entries = [
        HistoryEntry(1, 1000.0, "Ready", "a"),
        HistoryEntry(2, 1030.0, "Failed", "b"),
        HistoryEntry(3, 2000.0, "Ready", "b"),  # 970 s of silence with a 30 s interval
    ]
    spans = cluster_spans(entries, 30, T, 900.0, 2010.0)
    assert spans == [
        Span(900.0, 1000.0, "NoData"),
        Span(1000.0, 1030.0, "Ready"),
        Span(1030.0, 1120.0, "Failed"),
        Span(1120.0, 1330.0, "Stale"),
        Span(1330.0, 2000.0, "Offline"),
        Span(2000.0, 2010.0, "Ready"),
    ]
    events = cluster_events(entries, 30, T, 2010.0)
    assert [(e.at, e.text) for e in events] == [
        (2000.0, "back online: Ready"),
        (2000.0, "Failed → Ready"),
        (1330.0, "went Offline"),
        (1030.0, "Ready → Failed"),
        (1030.0, "applied b"),
    ]


def test_spans_are_clipped_to_the_window_and_an_empty_history_is_no_data() -> None:
    entries = [HistoryEntry(1, 0.0, "Ready", "a"), HistoryEntry(2, 30.0, "Ready", "a")]
    assert cluster_spans(entries, 30, T, 40.0, 100.0) == [Span(40.0, 100.0, "Ready")]
    assert cluster_spans([], 30, T, 0.0, 10.0) == [Span(0.0, 10.0, "NoData")]


def test_fleet_samples_and_events_stay_bounded() -> None:
    history = FleetHistory()
    for i in range(10_000):
        history.sample({"Ready": i}, i * 100.0)  # every 100 s: one sample per 300 s is kept
    assert len(history.samples) == 2016  # 7 days of 5-minute samples
    assert history.samples[1][0] - history.samples[0][0] == 300.0
    columns = history.columns(86400, 10_000 * 100.0, 96)
    assert len(columns) == 96
    assert columns[-1][1] == history.samples[-1][1]
    ready = summarize(make_report("edge-1", 1, [make_bundle("web", "Ready")]), 0.0)
    failed = summarize(make_report("edge-1", 2, [make_bundle("web", "Failed", message="boom")]), 0.0)
    for i in range(MAX_EVENTS):
        history.record(ready, "Ready", failed, "Failed", float(i))  # a state change and an error each
    assert len(history.events) == MAX_EVENTS
    total, page = history.recent(0, 2, cluster="edge-1")
    assert total == MAX_EVENTS
    assert [(e.kind, e.text) for e in page] == [
        ("error", "error: Failed web: boom"),
        ("state", "Ready → Failed"),
    ]
