"""A held cluster runs its wave's released revision: it steps back (or catches up) to it, never beyond.

When the hub holds a staged change of a bundle at this cluster's commit, its answer may name the
older commit the cluster's wave *has* been released for (``released`` in hub.rollout_contract).  A
cluster that was offline, or whose checkout is already at a newer, unreleased commit, then applies
the bundle as planned at that commit — from a separate checkout of it (``Source.checkout_at``),
so the main checkout, the plan of every other bundle and the prune step (which follows the plan at
the checkout's commit only) are untouched: nothing is ever pruned because of a step back.  When
its wave is released for the newer commit, the ordinary path moves it forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from agent import actions, apply, fleet
from agent.actions import Failure
from agent.passcontext import PassContext, take_lease
from agent.releases import COMMIT_LABEL, ReleaseHistory, digest_label

log = structlog.get_logger("agent.reconcile")


@dataclass(frozen=True)
class StepBack:
    history: ReleaseHistory | None  # the release as it is now
    note: str  # what the cluster runs meanwhile, for the bundle's message
    error: str | None = None  # applying the released revision failed (and was rolled back)


def step_back(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    released: str,
    history: ReleaseHistory | None,
    histories: dict[tuple[str, str], ReleaseHistory],
    failures: dict[str, Failure],
) -> StepBack | None:
    """Bring ``desired``'s release to the revision it has at fleet commit ``released``; None when that
    revision cannot be planned here (then the release is simply held as it is)."""
    assert desired.wave is not None
    note = f"runs the revision wave {desired.wave.name} was released for ({released[:12]})"
    current = history.current if history is not None else None
    if current is not None and current.status == "deployed" and current.labels.get(COMMIT_LABEL) == released:
        return StepBack(history, note)
    older = _planned_at(ctx, desired, released)
    if older is None:
        return None
    root, planned = older
    try:
        values, _, digest = apply.effective_values(ctx.kube, planned)
    except apply.ValuesFromMissing as missing:
        return StepBack(history, note, str(missing))
    if current is not None and current.status == "deployed" and current.digest == digest_label(digest):
        return StepBack(history, note)
    key = f"{desired.namespace}/{desired.release}"
    failure = failures.get(key)
    if failure is not None and failure.digest == digest and ctx.clock() < failure.retry_at:
        return StepBack(history, note, failure.message)
    busy = take_lease(ctx, histories)
    if busy is not None:
        return StepBack(history, f"{note}: waiting ({busy})")
    history = histories.get((desired.namespace, desired.release))
    log.info("rollout_step_to_released", bundle=desired.bundle, release=desired.release, commit=released[:12])
    error, history = apply.install_or_upgrade(ctx, planned, values, digest, released, history, root)
    if error is None:
        if failure is not None and failure.digest == digest:
            failures.pop(key, None)
        return StepBack(history, note)
    failures[key] = actions.next_retry(failure, digest, error, ctx.clock(), ctx.interval)
    return StepBack(history, note, error)


def _planned_at(
    ctx: PassContext, desired: fleet.DesiredRelease, commit: str
) -> tuple[Path, fleet.DesiredRelease] | None:
    if ctx.checkout_at is None:
        return None
    root = ctx.checkout_at(commit)
    if root is None:
        return None
    try:
        planned = fleet.plan_agent(
            fleet.load_fleet(root, cache=ctx.fleet_cache), ctx.cluster, ctx.fleet_cache
        )
    except (fleet.FleetRepoError, fleet.UnknownClusterError) as error:
        log.warning(
            "released_revision_unplannable", bundle=desired.bundle, commit=commit[:12], error=str(error)
        )
        return None
    found = next((r for r in planned.plan.releases if r.bundle == desired.bundle), None)
    if (
        found is None
        or found.paused
        or (found.namespace, found.release) != (desired.namespace, desired.release)
    ):
        return None  # not the same release there: nothing to step back to
    return root, found
