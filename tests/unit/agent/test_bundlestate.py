"""A bundle's state from the pass's facts: the precedence of DESIGN.md's status model, counts and lists."""

from __future__ import annotations

from typing import Any

import pytest

from agent.bundlestate import MAX_LISTED, STATES, derive
from agent.drift import Difference, Drift
from agent.health import ResourceHealth


def res(name: str, status: Any = "Ready", message: str = "") -> ResourceHealth:
    return ResourceHealth(
        "Deployment", "default", name, status, message or f"Deployment default/{name}: {status}"
    )


def drifted(name: str) -> Drift:
    return Drift(
        key=("v1", "ConfigMap", "default", name),
        missing=False,
        differences=(Difference("data.region", "us", "eu"),),
    )


READY = (res("a"), res("b"))
BASE: dict[str, Any] = {
    "paused": False,
    "dependencies_ready": True,
    "apply_error": None,
    "applied": True,
    "resources": READY,
    "drifts": (),
}

CASES = [
    pytest.param(
        {}, "Ready", "2 of 2 resources ready", id="applied with every resource ready and no drift is Ready"
    ),
    pytest.param(
        {"resources": ()},
        "Ready",
        "0 of 0 resources ready",
        id="an applied release with no resources is Ready",
    ),
    pytest.param(
        {"paused": True, "apply_error": "boom", "applied": False, "drifts": (drifted("c"),)},
        "Paused",
        "paused; 2 of 2 resources ready",
        id="paused wins over everything else",
    ),
    pytest.param(
        {"apply_error": "Error: template: web/templates/d.yaml:3: bad", "resources": (res("a", "Failed"),)},
        "Failed",
        "Error: template: web/templates/d.yaml:3: bad",
        id="an apply error is Failed with helm's message, even with failed resources",
    ),
    pytest.param(
        {"dependencies_ready": False, "applied": False},
        "Pending",
        "waiting for dependencies to be Ready",
        id="not applied because a dependency is not Ready is Pending",
    ),
    pytest.param(
        {"dependencies_ready": False, "applied": False, "waiting_for": ("db", "cache")},
        "Pending",
        "waiting for dependencies: db, cache to be Ready",
        id="Pending names the dependencies it waits for",
    ),
    pytest.param(
        {"applied": False},
        "Pending",
        "the desired revision is not applied yet",
        id="a desired revision not yet applied is Pending",
    ),
    pytest.param(
        {"dependencies_ready": False},
        "Ready",
        "2 of 2 resources ready",
        id="an applied bundle whose dependency went unready keeps its own health",
    ),
    pytest.param(
        {"resources": (res("a"), res("b", "Failed", "Pod default/b: container app is CrashLoopBackOff"))},
        "Degraded",
        "Pod default/b: container app is CrashLoopBackOff",
        id="applied with a Failed resource is Degraded with that resource's message",
    ),
    pytest.param(
        {
            "resources": (res("a", "Failed", "A failed"), res("b", "Failed", "B failed")),
            "drifts": (drifted("c"),),
        },
        "Degraded",
        "A failed (and 1 more failed)",
        id="Degraded wins over Modified and counts the other failures",
    ),
    pytest.param(
        {"drifts": (drifted("c"), drifted("d"))},
        "Modified",
        "ConfigMap default/c: data.region is 'us', release says 'eu' (and 1 more modified)",
        id="applied with drift is Modified and says what differs",
    ),
    pytest.param(
        {"resources": (res("a", "InProgress", "M"),), "drifts": (drifted("c"),)},
        "Modified",
        "ConfigMap default/c: data.region is 'us', release says 'eu'",
        id="Modified wins over InProgress",
    ),
    pytest.param(
        {"resources": (res("a"), res("b", "InProgress", "Deployment default/b: 1 of 2 replicas available"))},
        "InProgress",
        "1 of 2 resources ready; Deployment default/b: 1 of 2 replicas available",
        id="applied with a resource on its way is InProgress with its message",
    ),
    pytest.param(
        {"resources": (res("a", "InProgress", "A"), res("b", "Unknown", "B"), res("c", "InProgress", "C"))},
        "InProgress",
        "0 of 3 resources ready; B (and 2 more not ready)",
        id="an Unknown resource keeps the bundle InProgress and is shown first",
    ),
]


@pytest.mark.parametrize(("changes", "state", "message"), CASES)
def test_derive(changes: dict[str, Any], state: str, message: str) -> None:
    result = derive(**{**BASE, **changes})
    assert (result.state, result.message) == (state, message)
    assert result.state in STATES


def test_counts_ready_and_total_resources() -> None:
    result = derive(**{**BASE, "resources": (res("a"), res("b", "InProgress"), res("c", "Failed"))})
    assert (result.ready, result.total) == (1, 3)


def test_non_ready_resources_are_listed_worst_first_in_release_order() -> None:
    resources = (
        res("a", "InProgress"),
        res("b"),
        res("c", "Failed"),
        res("d", "Unknown"),
        res("e", "Failed"),
    )
    result = derive(**{**BASE, "resources": resources})
    assert [r.name for r in result.non_ready] == ["c", "e", "d", "a"]


def test_at_most_ten_non_ready_and_ten_modified_are_listed() -> None:
    resources = tuple(res(f"r{i}", "InProgress") for i in range(15))
    drifts = tuple(drifted(f"c{i}") for i in range(12))
    result = derive(**{**BASE, "resources": resources, "drifts": drifts})
    assert len(result.non_ready) == MAX_LISTED
    assert len(result.modified) == MAX_LISTED
    assert result.total == 15
    assert result.message.endswith("(and 11 more modified)")


def test_failures_beyond_the_listed_ten_are_still_counted() -> None:
    resources = tuple(res(f"r{i}", "Failed", f"r{i} failed") for i in range(12))
    result = derive(**{**BASE, "resources": resources})
    assert result.message == "r0 failed (and 11 more failed)"
