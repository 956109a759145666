"""The prune step of a pass: uninstall what is no longer planned, behind the safety rules and the brake.

Releases are pruned only when the source was fetched fresh, the pass was not interrupted and the
agent holds its Lease; a release whose bundle has problems, or the agent's own, is never pruned;
and a mass deletion trips the deletion brake (``agent.brake``), which uninstalls none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from agent import brake, fleet, inflight
from agent.fleet.rollout import FleetSettings
from agent.helm import HelmError
from agent.passcontext import PassContext, take_lease
from agent.releases import BUNDLE_LABEL, CLUSTER_LABEL, ReleaseHistory
from agent.selfbundle import SELF_BUNDLE
from agent.source import SourceRevision

log = structlog.get_logger("agent.reconcile")


@dataclass(frozen=True)
class PruneResult:
    pruned: tuple[str, ...] = ()
    skipped: str | None = None  # why pruning was not attempted, when it was not
    refused: brake.Refusal | None = None  # the deletion brake held a mass uninstall


def prune_step(
    ctx: PassContext,
    revision: SourceRevision,
    agent_plan: fleet.AgentPlan,
    histories: dict[tuple[str, str], ReleaseHistory],
    settings: FleetSettings,
) -> PruneResult:
    """Prune what the plan no longer wants, when every safety rule allows it."""
    why_not = _why_not_prune(revision, interrupted=ctx.stop.is_set())
    if why_not is None and prunable(ctx, agent_plan, histories):
        why_not = take_lease(ctx, histories)
    if why_not:
        if prunable(ctx, agent_plan, histories):
            log.warning("prune_skipped", reason=why_not)
        return PruneResult(skipped=why_not)
    candidates = prunable(ctx, agent_plan, histories)
    owned = len(prunable(ctx, None, histories))
    refusal = brake.check(
        ctx.cluster,
        [f"{ns}/{name}" for ns, name in candidates],
        owned,
        settings.brake,
    )
    if (
        refusal is not None
        and ctx.gates is not None
        and ctx.gates.allow_prune(refusal.prune_id, revision.commit)
    ):
        log.warning("prune_allowed_by_hub", releases=list(refusal.releases), prune_id=refusal.prune_id)
    elif refusal is not None:
        log.warning(
            "prune_refused", releases=list(refusal.releases), prune_id=refusal.prune_id, reason=refusal.reason
        )
        return PruneResult(skipped=refusal.message(), refused=refusal)
    return PruneResult(pruned=_prune(ctx, agent_plan, histories))


def _why_not_prune(revision: SourceRevision, *, interrupted: bool) -> str | None:
    if not revision.may_prune:
        return f"the source could not be fetched ({revision.error or 'offline'})"
    if interrupted:
        return "the pass was interrupted"
    return None


def prunable(
    ctx: PassContext, agent_plan: fleet.AgentPlan | None, histories: Mapping[tuple[str, str], ReleaseHistory]
) -> list[tuple[str, str]]:
    """Releases this agent installed that are no longer planned, except those of a bundle with
    problems (its targets are unknown) or held back on this cluster; with no plan, every release
    this agent installed here."""
    wanted: set[tuple[str, str]] = set()
    protected: frozenset[str] = frozenset()
    if agent_plan is not None:
        wanted = {(r.namespace, r.release) for r in agent_plan.plan.releases}
        wanted |= {(b.namespace, b.release) for b in agent_plan.blocked}
        protected = agent_plan.protected_bundles
    return sorted(
        key
        for key, history in histories.items()
        if history.current.owned
        and history.current.labels.get(CLUSTER_LABEL) == ctx.cluster
        and history.current.labels.get(BUNDLE_LABEL) not in protected
        and key not in wanted
        # The agent never uninstalls itself: a site whose flotilla-system bundle is removed (or not
        # yet merged after bootstrap) keeps its agent, reachable through Git.
        and history.current.labels.get(BUNDLE_LABEL) != SELF_BUNDLE
    )


def _prune(
    ctx: PassContext, agent_plan: fleet.AgentPlan, histories: Mapping[tuple[str, str], ReleaseHistory]
) -> tuple[str, ...]:
    pruned = []
    for namespace, name in prunable(ctx, agent_plan, histories):
        try:
            with inflight.operation(ctx.state_dir, namespace, name, "uninstall") as started:
                ctx.helm.uninstall(release=name, namespace=namespace, on_start=started)
            pruned.append(f"{namespace}/{name}")
            log.info("release_pruned", release=name, namespace=namespace)
        except HelmError as error:
            log.error("prune_failed", release=name, namespace=namespace, error=str(error))
    return tuple(pruned)
