"""Maintenance windows: cron schedules read in the site's time zone, open for a duration."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime

import pytest

from agent import fleet
from agent.fleet.windows import CronError, Window, closed_reason, parse_cron
from tests.unit.fleet.repos import HEADER, base_files, write_repo


def window(schedule: str, minutes: int, zone: str = "Europe/Dublin") -> Window:
    return Window("nightly", parse_cron(schedule), minutes, zone)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_window_is_open_from_its_start_for_its_duration_in_the_sites_time_zone():
    nightly = window("0 2 * * *", 120)  # 02:00-04:00 in Dublin
    assert not nightly.is_open(at("2026-07-01T00:59:00"))  # 01:59 summer time
    assert nightly.is_open(at("2026-07-01T01:00:00"))  # 02:00 IST
    assert nightly.is_open(at("2026-07-01T02:59:00"))
    assert not nightly.is_open(at("2026-07-01T03:00:00"))  # 04:00 IST
    assert nightly.is_open(at("2026-01-15T02:30:00"))  # winter: 02:30 GMT


def test_a_window_across_midnight_and_weekday_lists():
    weekend = window("30 22 * * 5,6", 180, "UTC")  # Friday and Saturday 22:30 for 3 h
    assert weekend.is_open(at("2026-12-05T00:10:00"))  # Saturday 00:10, opened Friday 22:30
    assert not weekend.is_open(at("2026-12-03T23:00:00"))  # Thursday
    assert weekend.is_open(at("2026-12-06T01:29:00"))  # Sunday 01:29, opened Saturday
    assert not weekend.is_open(at("2026-12-06T01:30:00"))


def test_steps_ranges_and_sunday_as_7():
    assert parse_cron("*/15 8-10 * * 7")[0] == frozenset({0, 15, 30, 45})
    assert parse_cron("*/15 8-10 * * 7")[4] == frozenset({0})


@pytest.mark.parametrize("bad", ["* * *", "61 * * * *", "a * * * *", "5-1 * * * *", "*/0 * * * *"])
def test_bad_schedules_are_refused(bad):
    with pytest.raises(CronError):
        parse_cron(bad)


def test_no_window_means_always_and_a_closed_one_says_which():
    assert closed_reason((), at("2026-01-01T12:00:00")) is None
    assert closed_reason((window("0 2 * * *", 60),), at("2026-01-01T12:00:00")) == (
        "waiting for a maintenance window (nightly)"
    )


def repo_with_window(tmp_path: pathlib.Path, schedule: str, zone: str) -> pathlib.Path:
    files = base_files()
    files["fleet.yaml"] = (
        f"{HEADER}kind: Fleet\nmaintenanceWindows:\n"
        f"  - name: nightly\n    schedule: '{schedule}'\n    durationMinutes: 60\n    timeZone: {zone}\n"
        "    clusterSelector: {matchLabels: {region: eu}}\n"
    )
    return write_repo(tmp_path / "fleet", files)


def test_fleet_yaml_windows_are_validated_at_their_line(tmp_path: pathlib.Path):
    problems = fleet.validate_repo(repo_with_window(tmp_path, "0 25 * * *", "Mars/Olympus"))
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (5, "schedule"),
        (7, "unknown time zone 'Mars/Olympus' (an IANA name such as Europe/Dublin)"),
    ]


def test_a_window_applies_to_the_clusters_its_selector_matches(tmp_path: pathlib.Path):
    repo = fleet.load_repo(repo_with_window(tmp_path, "0 2 * * *", "Europe/Dublin"))
    assert repo.settings is not None
    (nightly,) = repo.settings.windows
    assert nightly.applies_to(repo.clusters["eu-1"], repo.groups)
    assert not nightly.applies_to(repo.clusters["us-1"], repo.groups)
