"""The agent reporter's pure decisions and its durable outbox (no network involved)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.reporter import Reporter, backoff_delay, is_permanent, next_sequence, redact, send_order
from hub.contract import parse_report
from tests.unit.hub.factory import make_report


def test_newest_goes_first_then_the_rest_in_sequence_order() -> None:
    assert send_order([7, 3, 9, 5]) == [9, 3, 5, 7]
    assert send_order([]) == []


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_backoff_grows_with_jitter_within_bounds(failures: int, seed: int) -> None:
    delay = backoff_delay(failures, random.Random(seed), first=1.0, cap=300.0)
    ceiling = min(300.0, 2.0 ** (failures - 1))
    assert ceiling / 2 <= delay <= ceiling


def test_only_unfixable_client_errors_are_permanent() -> None:
    assert [is_permanent(s) for s in (401, 403, 413, 422)] == [True] * 4
    assert [is_permanent(s) for s in (0, 200, 408, 429, 500, 503)] == [False] * 6


def test_sequence_is_monotonic_and_survives_a_restart(tmp_path: Path) -> None:
    first = next_sequence(tmp_path)
    second = next_sequence(tmp_path)
    assert second > first
    third = next_sequence(tmp_path)  # read back from the file, as after a restart
    assert third > second
    assert (tmp_path / "report-sequence").read_text().strip() == str(third)
    ahead = tmp_path / "ahead"
    ahead.mkdir()
    (ahead / "report-sequence").write_text(f"{third + 10**9}\n")  # a counter ahead of the clock
    assert next_sequence(ahead) == third + 10**9 + 1


def test_of_two_agents_of_one_cluster_the_later_report_has_the_higher_sequence(tmp_path: Path) -> None:
    """A self-upgrade's old pod and new pod report for one cluster, each from its own state: the
    hub keeps the highest sequence, so the one reporting last must be above the other."""
    old, new = tmp_path / "old-pod", tmp_path / "new-pod"
    for _ in range(50):
        next_sequence(old)
    time.sleep(0.01)
    started_later = [next_sequence(new) for _ in range(100)]  # the new pod reports a lot
    # a counter runs ahead of the clock by at most one per report made within the same millisecond
    time.sleep(0.15)
    assert next_sequence(old) > max(started_later)  # the old pod's report after that still counts


def test_redact_drops_credentials_from_the_hub_url() -> None:
    assert redact("https://user:secret@hub.example:8443/base") == "https://hub.example:8443/base"
    assert redact("http://[::1]:8080/") == "http://[::1]:8080/"


def test_submit_persists_to_the_outbox_without_touching_the_network(tmp_path: Path) -> None:
    reporter = Reporter("http://127.0.0.1:9", "flt_x", tmp_path, start=False)
    reporter.submit(make_report("edge-1", 41))
    reporter.submit(make_report("edge-1", 42))
    assert reporter.pending() == [41, 42]
    stored = parse_report((tmp_path / "outbox" / f"{42:020d}.json").read_bytes())
    assert stored == make_report("edge-1", 42)
    assert not list((tmp_path / "outbox").glob(".*tmp"))


def test_heartbeat_resends_the_latest_report_under_a_new_sequence(tmp_path: Path) -> None:
    now = [100.0]
    reporter = Reporter("http://127.0.0.1:9", "flt_x", tmp_path, clock=lambda: now[0], start=False)
    assert not reporter.heartbeat_due()
    reporter.submit(make_report("edge-1", 5, interval_seconds=30))
    now[0] += 29
    assert not reporter.heartbeat_due()
    now[0] += 1
    assert reporter.heartbeat_due()
    beat = reporter.heartbeat()
    assert beat is not None
    assert beat.sequence > 5
    assert beat.bundles == make_report("edge-1", 5).bundles
    assert not reporter.heartbeat_due()
    assert reporter.pending() == [5, beat.sequence]


def test_a_restarted_reporter_picks_up_the_outbox(tmp_path: Path) -> None:
    Reporter("http://127.0.0.1:9", "flt_x", tmp_path, start=False).submit(make_report("edge-1", 8))
    again = Reporter("http://127.0.0.1:9", "flt_x", tmp_path, start=False)
    assert again.pending() == [8]
    assert again.heartbeat() is not None  # the newest queued report is the heartbeat's template
