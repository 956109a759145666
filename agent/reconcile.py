"""One reconcile pass: source → plan → apply → health → drift → prune, returning what happened.

This is the single ladder of steps; each step's work lives in its own module (``source``, ``fleet``,
``actions``, ``apply``, ``observe``, ``prune``, ``bundlestate``; one release's steps are in
``reconcile_release``; the context and outcome types are in ``passcontext``).  The pass never raises for
a problem it can report: every failure ends up in the returned :class:`PassOutcome`.

Safety rule: releases are pruned only when the source was fetched fresh and this cluster's plan
succeeded.  A cut network, a broken cluster file or an unknown cluster never deletes anything, and
a release whose bundle has problems (see ``fleet.isolation``) is left exactly as it is.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

import structlog

from agent import fleet, state
from agent.fleet import windows
from agent.fleet.rollout import FleetSettings
from agent.kube import KubeError
from agent.observe import live_snapshot
from agent.passcontext import Gate, PassContext, PassOutcome, ReleaseOutcome
from agent.prune import prune_step
from agent.reconcile_release import reconcile_release
from agent.releases import COMMIT_LABEL, ReleaseHistory, group_releases
from agent.source import SourceRevision

__all__ = ["Gate", "PassContext", "PassOutcome", "ReleaseOutcome", "reconcile_once"]

log = structlog.get_logger(__name__)

UNREACHED = "not checked this pass: the agent was stopping"


def reconcile_once(ctx: PassContext, revision: SourceRevision) -> PassOutcome:
    """Run one pass over a synced source revision."""
    started = time.monotonic()
    writes_before = ctx.kube.writes
    calls_before = len(ctx.helm.calls)
    try:
        outcome = _reconcile(ctx, revision)
    finally:
        if ctx.lease is not None:
            ctx.lease.release()
    return replace(
        outcome,
        helm_calls=tuple(ctx.helm.calls[calls_before:]),
        api_writes=ctx.kube.writes - writes_before,
        duration_seconds=time.monotonic() - started,
    )


def _reconcile(ctx: PassContext, revision: SourceRevision) -> PassOutcome:
    base = PassOutcome(
        cluster=ctx.cluster, commit=revision.commit, source_error=revision.error, offline=revision.offline
    )
    if revision.path is None:
        return replace(base, prune_skipped="no checkout of the fleet repo is available yet")
    try:
        loaded = fleet.load_fleet(revision.path, cache=ctx.fleet_cache)
        agent_plan = fleet.plan_agent(loaded, ctx.cluster, ctx.fleet_cache)
    except fleet.FleetRepoError as error:
        log.error("fleet_repo_invalid", commit=revision.commit, problems=len(error.problems))
        return replace(base, problems=tuple(error.problems), prune_skipped="the fleet repo failed validation")
    except fleet.UnknownClusterError as error:
        return replace(base, error=str(error), prune_skipped="the plan failed")
    plan = agent_plan.plan
    if agent_plan.problems:  # isolated: what they block is left alone, everything else applies
        log.error("fleet_repo_problems", commit=revision.commit, problems=len(agent_plan.problems),
                  blocked=[b.bundle for b in agent_plan.blocked])  # fmt: skip
    base = replace(base, labels=dict(plan.cluster.labels), problems=agent_plan.problems)
    settings = loaded.settings or FleetSettings()
    if ctx.gates is not None:  # a stale checkout must not start a rollout of an old commit on the hub
        ctx.gates.source_fresh = revision.may_prune
    ctx = replace(ctx, maintenance=windows.windows_for(settings.windows, plan.cluster, loaded.groups))
    ctx.kube.forget_discovery()  # CRDs may have come or gone since the last pass
    try:
        histories = group_releases(ctx.kube.helm_release_secrets())
    except KubeError as error:
        return replace(
            base, cluster_error=str(error), prune_skipped="the cluster's releases could not be read"
        )

    snapshot = live_snapshot(ctx, plan.releases, histories)
    failures = state.load_failures(ctx.state_dir)
    failures_before = dict(failures)
    outcomes: list[ReleaseOutcome] = []
    states: dict[str, str] = {}
    unreached: list[str] = []
    for desired in plan.releases:
        if ctx.stop.is_set():
            unreached.append(desired.bundle)
            outcomes.append(_unreached_outcome(desired, histories))
            continue
        outcome = reconcile_release(ctx, desired, revision, histories, snapshot, states, failures)
        states[desired.bundle] = outcome.state
        outcomes.append(outcome)
        log.info("release_reconciled", bundle=desired.bundle, release=desired.release,
                 namespace=desired.namespace, action=outcome.action, state=outcome.state)  # fmt: skip
    if unreached:
        log.info("pass_interrupted", unreached=unreached)
    if failures != failures_before:
        state.save_failures(ctx.state_dir, failures)
    outcomes += [_blocked_outcome(blocked, histories) for blocked in agent_plan.blocked]
    base = replace(base, releases=tuple(outcomes), unreached=tuple(unreached))

    pruned = prune_step(ctx, revision, agent_plan, histories, settings)
    return replace(base, pruned=pruned.pruned, prune_skipped=pruned.skipped, prune_refused=pruned.refused)


def _unreached_outcome(
    desired: fleet.DesiredRelease, histories: Mapping[tuple[str, str], ReleaseHistory]
) -> ReleaseOutcome:
    """A release the pass stopped before (the agent is shutting down): left as it is, and reported
    as the last report had it (``agent.report``), never as gone."""
    return _left_as_it_is(desired.bundle, desired.release, desired.namespace, "Pending", UNREACHED, histories)


def _blocked_outcome(
    blocked: fleet.BlockedRelease, histories: Mapping[tuple[str, str], ReleaseHistory]
) -> ReleaseOutcome:
    """A release held back by a problem in the repo: reported as it is, left exactly as it is."""
    return _left_as_it_is(
        blocked.bundle, blocked.release, blocked.namespace, "Failed", blocked.reason, histories
    )


def _left_as_it_is(
    bundle: str,
    release: str,
    namespace: str,
    state: str,
    message: str,
    histories: Mapping[tuple[str, str], ReleaseHistory],
) -> ReleaseOutcome:
    history = histories.get((namespace, release))
    current = history.current if history is not None else None
    return ReleaseOutcome(
        bundle=bundle,
        release=release,
        namespace=namespace,
        state=state,
        message=message,
        helm_revision=current.revision if current else None,
        chart_version=current.chart_version if current else "",
        applied_commit=current.labels.get(COMMIT_LABEL) if current else None,
    )
