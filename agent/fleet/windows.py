"""Maintenance windows (``fleet.yaml``, ``maintenanceWindows``): when a change may be applied on a cluster.

A window is a cron schedule (minute hour day-of-month month day-of-week, evaluated in the
window's ``timeZone``) and a duration; it is open from each time the schedule matches for
``durationMinutes``.  A cluster matched by at least one window's selector applies installs and
upgrades only while one of its windows is open; what runs keeps running outside them.  The agent
evaluates this on its own clock, so windows work offline.  Pure, apart from the time zone database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.fleet.model import Cluster, ClusterGroup, LabelSelector
from agent.fleet.selectors import fields_match

MAX_DURATION_MINUTES = 7 * 24 * 60
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


class CronError(ValueError):
    pass


def parse_cron(expression: str) -> tuple[frozenset[int], ...]:
    """The five fields of a cron expression as sets of allowed values (``*``, lists, ranges, steps)."""
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(
            f"a schedule has 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    fields = []
    for text, (name, low, high) in zip(parts, _FIELDS, strict=True):
        allowed: set[int] = set()
        for item in text.split(","):
            allowed |= _item(item, name, low, high)
        if name == "day of week" and 7 in allowed:
            allowed = (allowed - {7}) | {0}  # 0 and 7 are both Sunday
        fields.append(frozenset(allowed))
    return tuple(fields)


def _item(item: str, name: str, low: int, high: int) -> set[int]:
    base, _, step_text = item.partition("/")
    try:
        step = int(step_text) if step_text else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            start, end = (int(x) for x in base.split("-", 1))
        else:
            start = end = int(base)
    except ValueError:
        raise CronError(f"{name}: {item!r} is not a number, range, list or step") from None
    if step < 1 or not low <= start <= end <= high:
        raise CronError(f"{name}: {item!r} is outside {low}-{high}")
    return set(range(start, end + 1, step))


@dataclasses.dataclass(frozen=True)
class Window:
    name: str
    schedule: tuple[frozenset[int], ...]
    duration_minutes: int
    time_zone: str
    cluster_names: tuple[str, ...] | None = None
    selector: LabelSelector | None = None
    group: str | None = None

    def applies_to(self, cluster: Cluster, groups: Mapping[str, ClusterGroup]) -> bool:
        return fields_match(
            cluster, groups, names=self.cluster_names, selector=self.selector, group=self.group
        )

    def starts_at(self, moment: datetime) -> bool:
        minute, hour, day, month, weekday = self.schedule
        cron_weekday = (moment.weekday() + 1) % 7  # cron: 0 = Sunday
        return (
            moment.minute in minute
            and moment.hour in hour
            and moment.month in month
            and _day_matches(moment.day, cron_weekday, day, weekday)
        )

    def is_open(self, now: datetime) -> bool:
        """Whether a start of the schedule lies within the last ``duration_minutes`` (local time)."""
        local = now.astimezone(ZoneInfo(self.time_zone)).replace(second=0, microsecond=0)
        return any(self.starts_at(local - timedelta(minutes=back)) for back in range(self.duration_minutes))


def _day_matches(day: int, weekday: int, days: frozenset[int], weekdays: frozenset[int]) -> bool:
    """Cron's rule: when both day fields are restricted, either may match."""
    all_days, all_weekdays = len(days) == 31, len(weekdays) == 7
    if all_days or all_weekdays:
        return day in days and weekday in weekdays
    return day in days or weekday in weekdays


def check_time_zone(name: str) -> str | None:
    """A problem message for an unknown time zone, else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (an IANA name such as Europe/Dublin)"
    return None


def windows_for(
    windows: Iterable[Window], cluster: Cluster, groups: Mapping[str, ClusterGroup]
) -> tuple[Window, ...]:
    return tuple(window for window in windows if window.applies_to(cluster, groups))


def closed_reason(windows: Sequence[Window], now: datetime) -> str | None:
    """None when the cluster has no window or one is open; else why a change must wait."""
    if not windows or any(window.is_open(now) for window in windows):
        return None
    names = ", ".join(window.name for window in windows)
    return f"waiting for a maintenance window ({names})"
