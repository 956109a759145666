"""One release within a reconcile pass: gate, lease, apply, observe, correct drift, derive its state.

``agent.reconcile`` runs the pass ladder and calls :func:`reconcile_release` for each desired
release in order; everything that happens to that one release (held by a gate or stepped back,
recovered from a pending operation, installed or upgraded, checked for drift and for a degraded
canary) is here, and ends up in the returned :class:`ReleaseOutcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agent import (
    actions,
    apply,
    bakewatch,
    bundlestate,
    fleet,
    gates,
    inflight,
    operations,
    selfpending,
    stepback,
)
from agent.actions import Action, Failure
from agent.kube import ObjectKey
from agent.observe import correct, observe
from agent.passcontext import PassContext, ReleaseOutcome, take_lease
from agent.releases import COMMIT_LABEL, ReleaseHistory, ReleaseRecord, digest_label
from agent.selfbundle import SELF_BUNDLE
from agent.source import SourceRevision

__all__ = ["reconcile_release"]

log = structlog.get_logger("agent.reconcile")


def reconcile_release(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    revision: SourceRevision,
    histories: dict[tuple[str, str], ReleaseHistory],
    snapshot: Mapping[ObjectKey, dict[str, Any] | None],
    states: Mapping[str, str],
    failures: dict[str, Failure],
) -> ReleaseOutcome:
    key = f"{desired.namespace}/{desired.release}"
    history = histories.get((desired.namespace, desired.release))
    base = ReleaseOutcome(
        bundle=desired.bundle,
        release=desired.release,
        namespace=desired.namespace,
        state="Pending",
        chart=apply.chart_name(desired),
        chart_version=desired.chart.version or "",
    )
    allowed = ctx.kube.namespaces
    if allowed is not None and desired.namespace not in allowed:
        return replace(
            base,
            state="Failed",
            message=f"namespace {desired.namespace} is not one this agent may write to "
            f"(its namespaces setting: {', '.join(allowed)})",
        )
    try:  # a paused bundle is left exactly as it is: not even its valuesFrom are read
        values, values_digest, digest = (
            (dict(desired.values), "", desired.digest)
            if desired.paused
            else apply.effective_values(ctx.kube, desired)
        )
    except apply.ValuesFromMissing as missing:
        return replace(base, state="Failed", message=str(missing), digest=desired.digest)
    base = replace(base, digest=digest, values_digest=values_digest)
    blocked = [d for d in desired.depends_on if states.get(d) != "Ready"]

    def decide(history: ReleaseHistory | None) -> Action:
        return actions.decide(
            digest=digest,
            history=history,
            paused=desired.paused,
            dependencies_ready=not blocked,
            failure=failures.get(key),
            now=ctx.clock(),
        )

    action = decide(history)
    gate = _gate(ctx, desired, action, revision.commit, digest)
    if gate is not None and not gate.go:  # a change that may not advance yet: what runs keeps running
        return _held(ctx, desired, base, history, snapshot, revision.commit, gate, histories, failures)
    waiting = _operation_in_progress(ctx, desired, history) if action is Action.RECOVER_PENDING else None
    if waiting is None and action in _CHANGES_THE_CLUSTER:
        waiting = take_lease(ctx, histories)
        if waiting is None and history is not histories.get((desired.namespace, desired.release)):
            history = histories.get((desired.namespace, desired.release))  # re-read with the lease
            decided = decide(history)
            if decided is not action:
                action = decided
                gate = _gate(ctx, desired, action, revision.commit, digest)
                if gate is not None and not gate.go:
                    return _held(ctx, desired, base, history, {}, revision.commit, gate, histories, failures)
            if action is Action.RECOVER_PENDING:
                waiting = _operation_in_progress(ctx, desired, history)
    if waiting is not None:
        action = Action.WAIT
    message = ""
    apply_error: str | None = None
    if action is Action.CONFLICT:
        return replace(
            base,
            state="Failed",
            action=action.value,
            message=f"release {key} exists and was not installed by Flotilla; refusing to overwrite it",
        )
    if action is Action.BACKOFF:
        apply_error = failures[key].message
    elif action is Action.RECOVER_PENDING:
        assert history is not None
        apply_error = apply.recover_pending(ctx, desired, history)
        if apply_error is None:
            message = f"recovered from {history.current.status}"
            history = apply.refreshed_history(ctx, desired)
            if history is None or history.current.digest != digest_label(digest):
                action = (
                    Action.INSTALL if history is None or history.last_deployed() is None else Action.UPGRADE
                )
                failures.pop(key, None)
                gate = _gate(ctx, desired, action, revision.commit, digest)  # a staged change waits
                if gate is not None and not gate.go:
                    return _held(ctx, desired, base, history, {}, revision.commit, gate, histories, failures)
    if action in (Action.INSTALL, Action.UPGRADE):
        before = history
        apply_error, history = apply.install_or_upgrade(
            ctx, desired, values, digest, revision.commit, history, Path(str(revision.path))
        )
        if apply_error is None:
            failures.pop(key, None)
            if gate is not None and gate.go and revision.commit:  # a released staged change: it bakes
                bakewatch.start(ctx, desired, revision.commit, before, history)
        else:
            if gate is not None and ctx.gates is not None and revision.commit:
                ctx.gates.failed(desired.bundle, revision.commit)
            failures[key] = actions.next_retry(
                failures.get(key), digest, apply_error, ctx.clock(), ctx.interval
            )

    current = history.current if history is not None else None
    unchanged_by_this_pass = history is histories.get((desired.namespace, desired.release))
    observed = observe(ctx, current, snapshot if unchanged_by_this_pass else {})
    corrected = False
    if (
        observed.drifts
        and desired.correct_drift
        and action not in (Action.PAUSED, Action.WAIT)
        and apply_error is None
        and take_lease(ctx, histories) is None
    ):
        corrected = correct(ctx, desired, observed)
    deployed_digest_matches = current is not None and current.digest == digest_label(digest)
    result = bundlestate.derive(
        paused=action is Action.PAUSED,
        dependencies_ready=not blocked,
        apply_error=apply_error,
        applied=deployed_digest_matches and current is not None and current.status == "deployed",
        resources=observed.healths,
        drifts=observed.drifts,
        waiting_for=blocked,
        waiting_on=waiting,
    )
    degraded = bakewatch.check(ctx, desired, digest, history, result.state, result.message, failures)
    if degraded is not None:  # a failed canary, like a failed wait: true apply
        failure, history = degraded
        current = history.current if history is not None else None
        return replace(
            base,
            state="Failed",
            message=failure,
            action="rollback-degraded",
            helm_revision=current.revision if current else None,
            chart_version=(current.chart_version if current else "") or base.chart_version,
            applied_commit=current.labels.get(COMMIT_LABEL) if current else None,
            rollout=_facts(ctx, desired, revision.commit, holding=False),
        )
    if corrected:
        message = "; ".join(filter(None, [message, f"corrected drift in {len(observed.drifts)} object(s)"]))
    return replace(
        base,
        state=result.state,
        message="; ".join(filter(None, [result.message, message])),
        action=action.value,
        helm_revision=current.revision if current else None,
        chart_version=(current.chart_version if current else "") or base.chart_version,
        applied_commit=(revision.commit if deployed_digest_matches else current.labels.get(COMMIT_LABEL))
        if current
        else None,
        resources_ready=result.ready,
        resources_total=result.total,
        non_ready=tuple(result.non_ready),
        modified=tuple(result.modified),
        rollout=_facts(ctx, desired, revision.commit, holding=False),
    )


_CHANGES_THE_CLUSTER = frozenset({Action.INSTALL, Action.UPGRADE, Action.RECOVER_PENDING})


def _operation_in_progress(
    ctx: PassContext, desired: fleet.DesiredRelease, history: ReleaseHistory | None
) -> str | None:
    """None when the pending release may be recovered now; else what is still working on it."""
    if history is None:
        return None
    current = history.current
    verdict = operations.judge_pending(
        status=current.status,
        revision=current.revision,
        started_at=current.started_at,
        timeout_seconds=current.timeout_seconds(desired.options.timeout_seconds),
        now=ctx.clock(),
        record=inflight.load(ctx.state_dir, desired.namespace, desired.release),
        host=ctx.host,
        helm_running=inflight.helm_running,
    )
    log.info("pending_release", release=desired.release, recover=verdict.recover, reason=verdict.reason)
    if verdict.recover and desired.bundle == SELF_BUNDLE:  # the agent's own: maybe finish it instead
        own = selfpending.judge_live(ctx.kube, desired.namespace, history, ctx.clock())
        return own.reason if own.decision == "wait" else None
    return None if verdict.recover else verdict.reason


def _gate(
    ctx: PassContext, desired: fleet.DesiredRelease, action: Action, commit: str | None, digest: str
) -> gates.Gate | None:
    if action not in (Action.INSTALL, Action.UPGRADE):
        return None
    now = datetime.fromtimestamp(ctx.clock(), UTC)
    return gates.gate_for(desired, commit, digest, gates=ctx.gates, maintenance=ctx.maintenance, now=now)


def _facts(
    ctx: PassContext, desired: fleet.DesiredRelease, commit: str | None, *, holding: bool
) -> Mapping[str, Any] | None:
    return gates.facts_for(desired, commit, ctx.gates, holding=holding)


def _held(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    base: ReleaseOutcome,
    history: ReleaseHistory | None,
    snapshot: Mapping[ObjectKey, dict[str, Any] | None],
    commit: str | None,
    gate: gates.Gate,
    histories: dict[tuple[str, str], ReleaseHistory],
    failures: dict[str, Failure],
) -> ReleaseOutcome:
    """A staged change the gate holds: the current release keeps running, untouched — or, when the
    hub names the older revision this cluster's wave was released for, brought to that revision
    first (agent.stepback)."""
    note, error = "", None
    if gate.released is not None and gate.released != commit:
        stepped = stepback.step_back(ctx, desired, gate.released, history, histories, failures)
        if stepped is not None:
            snapshot = snapshot if stepped.history is history else {}
            history, note, error = stepped.history, stepped.note, stepped.error
    current = history.current if history is not None else None
    observed = observe(ctx, current, snapshot)
    failed = ctx.gates is not None and ctx.gates.has_failed(desired.bundle, commit)
    state = "Failed" if failed or error else "Pending"
    reason = "; ".join(filter(None, [error, note, gate.reason]))
    message = f"the change failed here and was rolled back; {reason}" if failed else reason
    return replace(
        base,
        state=state,
        message=message,
        action="hold-rollout",
        helm_revision=current.revision if current else None,
        chart_version=(current.chart_version if current else "") or base.chart_version,
        applied_commit=_held_commit(ctx, desired.bundle, current),
        resources_ready=sum(1 for h in observed.healths if h.ready),
        resources_total=len(observed.healths),
        rollout=_facts(ctx, desired, commit, holding=True),
    )


def _held_commit(ctx: PassContext, bundle: str, current: ReleaseRecord | None) -> str | None:
    """The commit a held release is at: what the last report said while the release is unchanged."""
    if current is None:
        return None
    revision, commit = ctx.reported.get(bundle, (None, None))
    if revision == current.revision and commit:
        return commit
    return current.labels.get(COMMIT_LABEL)
