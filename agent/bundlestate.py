"""One bundle's state on one cluster, derived from what the pass learned (DESIGN.md, Status model).

Pure: ``derive(...)`` takes plain facts and returns a :class:`BundleState`.  The precedence, first
match wins:

1. ``Paused``     — the bundle is paused; nothing is applied (resources are still counted).
2. ``Failed``     — rendering or applying failed (Helm's message).
3. ``Pending``    — the desired revision is not applied: waiting on ``dependsOn`` or not reached yet.
4. ``Degraded``   — applied, but a resource has Failed.
5. ``Modified``   — applied, but live objects drifted from the release.
6. ``InProgress`` — applied, resources not all Ready yet (or their health is Unknown).
7. ``Ready``      — applied, every resource Ready, no drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from agent.drift import Drift
from agent.health import ResourceHealth

State = Literal["Ready", "InProgress", "Pending", "Failed", "Degraded", "Modified", "Paused"]
STATES: Final[tuple[State, ...]] = (
    "Ready",
    "InProgress",
    "Pending",
    "Failed",
    "Degraded",
    "Modified",
    "Paused",
)
MAX_LISTED: Final = 10


@dataclass(frozen=True)
class BundleState:
    state: State
    message: str
    ready: int  # resources Ready
    total: int  # resources in the release
    non_ready: tuple[ResourceHealth, ...] = ()  # worst first, at most MAX_LISTED
    modified: tuple[Drift, ...] = ()  # at most MAX_LISTED


def derive(
    *,
    paused: bool,
    dependencies_ready: bool,
    apply_error: str | None,
    applied: bool,
    resources: Sequence[ResourceHealth],
    drifts: Sequence[Drift],
    waiting_for: Sequence[str] = (),
    waiting_on: str | None = None,
) -> BundleState:
    """The bundle's state.  ``applied`` means the deployed digest equals the desired digest.

    ``waiting_for`` optionally names the dependencies that are not Ready, for the message;
    ``waiting_on`` says what else holds the release back (a helm operation or agent still at work).
    """
    ready = sum(1 for r in resources if r.ready)
    total = len(resources)
    # sorted() is stable: resources of equal severity keep the release's order.
    non_ready = tuple(sorted((r for r in resources if not r.ready), key=lambda r: -r.severity))[:MAX_LISTED]
    modified = tuple(drifts)[:MAX_LISTED]
    counts = f"{ready} of {total} resources ready"

    def result(state: State, message: str) -> BundleState:
        return BundleState(state, message, ready, total, non_ready, modified)

    if paused:
        return result("Paused", f"paused; {counts}")
    if apply_error:
        return result("Failed", apply_error)
    if not applied:
        if not dependencies_ready:
            names = ", ".join(waiting_for)
            return result("Pending", f"waiting for dependencies{': ' + names if names else ''} to be Ready")
        if waiting_on:
            return result("Pending", f"not applied yet: {waiting_on}")
        return result("Pending", "the desired revision is not applied yet")
    failed = [r for r in resources if r.status == "Failed"]
    if failed:
        return result("Degraded", _first_and_more(failed[0].message, len(failed) - 1, "failed"))
    if drifts:
        return result("Modified", _first_and_more(drifts[0].message, len(drifts) - 1, "modified"))
    if non_ready:
        return result(
            "InProgress", f"{counts}; {_first_and_more(non_ready[0].message, total - ready - 1, 'not ready')}"
        )
    return result("Ready", counts)


def _first_and_more(first: str, more: int, what: str) -> str:
    return f"{first} (and {more} more {what})" if more > 0 else first
