"""One driver for the property tests that replay generated steps against a :class:`ReadModel` and
a plain dict of what the fleet should be, checking the two agree after every step."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from hub.model import ClusterSummary
from hub.readmodel import ReadModel


def replay(
    model: ReadModel,
    steps: Sequence[tuple[str, object]],
    summary_of: Callable[[object, int, float], ClusterSummary],
    now: float,
) -> Iterator[tuple[dict[str, ClusterSummary], float]]:
    """Apply each step (report / late / forget / wait) to ``model`` and to the expected fleet, and
    yield ``(fleet, now)`` after it."""
    fleet: dict[str, ClusterSummary] = {}
    sequence = 0
    for kind, arg in steps:
        if kind == "report":
            sequence += 1
            summary = summary_of(arg, sequence, now)
            previous = fleet.get(summary.name)
            if previous is not None:
                summary = replace(summary, last_seen=max(previous.last_seen, summary.last_seen))
            fleet[summary.name] = summary
            model.put(summary, now)
        elif kind == "late" and isinstance(arg, str) and arg in fleet:
            fleet[arg] = replace(fleet[arg], last_seen=now)
            model.touch(arg, now, now)
        elif kind == "forget" and isinstance(arg, str):
            assert model.forget(arg) == (fleet.pop(arg, None) is not None)
        elif kind == "wait" and isinstance(arg, float):
            now += arg
        yield fleet, now
