"""One reconcile pass: source → plan → apply → health → drift → prune, returning what happened.

This is the single ladder of steps; each step's work lives in its own module (``source``, ``fleet``,
``actions``, ``helm``, ``kube``, ``health``, ``drift``, ``bundlestate``).  The pass never raises for
a problem it can report: every failure ends up in the returned :class:`PassOutcome`.

Safety rule: releases are pruned only when the source was fetched fresh and this cluster's plan
succeeded.  A cut network, a broken cluster file or an unknown cluster never deletes anything, and
a release whose bundle has problems (see ``fleet.isolation``) is left exactly as it is.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from agent import (
    actions,
    brake,
    bundlestate,
    correction,
    drift,
    fleet,
    gates,
    health,
    inflight,
    operations,
    selfpending,
    sops,
    state,
)
from agent.actions import Action, Failure
from agent.fleet import windows
from agent.fleet.merge import merge_values
from agent.fleet.rollout import FleetSettings
from agent.fleet.yamldoc import parse_document
from agent.helm import ChartRef, Helm, HelmError
from agent.kube import HELM_FIELD_MANAGER, Kube, KubeError, ObjectKey, object_key
from agent.releases import (
    BUNDLE_LABEL,
    CLUSTER_LABEL,
    COMMIT_LABEL,
    DIGEST_LABEL,
    OWNER_LABEL,
    OWNER_VALUE,
    TIMEOUT_LABEL,
    ReleaseHistory,
    ReleaseRecord,
    digest_label,
    group_releases,
)
from agent.selfbundle import SELF_BUNDLE
from agent.source import SourceRevision

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReleaseOutcome:
    bundle: str
    release: str
    namespace: str
    state: str
    message: str = ""
    action: str = Action.UNCHANGED.value
    digest: str = ""
    values_digest: str = ""
    chart: str = ""
    chart_version: str = ""
    helm_revision: int | None = None
    applied_commit: str | None = None
    resources_ready: int = 0
    resources_total: int = 0
    non_ready: tuple[health.ResourceHealth, ...] = ()
    modified: tuple[drift.Drift, ...] = ()
    rollout: Mapping[str, Any] | None = None  # this cluster's place in a staged rollout (gates.wave_facts)


@dataclass(frozen=True)
class PassOutcome:
    cluster: str
    labels: Mapping[str, str] = field(default_factory=dict)
    commit: str | None = None
    source_error: str | None = None
    offline: bool = False
    problems: tuple[fleet.Problem, ...] = ()
    error: str | None = None  # the plan failed (e.g. this cluster is not in the fleet repo)
    cluster_error: str | None = None  # the cluster's API server could not be reached or refused
    releases: tuple[ReleaseOutcome, ...] = ()
    pruned: tuple[str, ...] = ()
    prune_skipped: str | None = None  # why pruning was not attempted, when it was not
    prune_refused: brake.Refusal | None = None  # the deletion brake held a mass uninstall
    helm_calls: tuple[str, ...] = ()
    api_writes: int = 0
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Everything planned is Ready (or paused on purpose) and nothing failed: ``once`` exits 0."""
        return (
            self.error is None
            and self.cluster_error is None
            and self.source_error is None
            and not self.problems
            and all(r.state in ("Ready", "Paused") for r in self.releases)
        )


@dataclass
class PassContext:
    """What a pass needs: the cluster's name and the parts that do I/O."""

    cluster: str
    state_dir: Path
    kube: Kube
    helm: Helm
    interval: float
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.time
    lease: Gate | None = None  # taken before the pass first changes anything (agent.lease)
    host: str = field(default_factory=inflight.host)
    sops: sops.Decryptor | None = None  # decrypts SOPS-encrypted values files (only for helm)
    fleet_cache: fleet.ContentCache = field(default_factory=fleet.ContentCache)
    gates: gates.Gates | None = None  # None: no hub, so no staged change can be released
    maintenance: tuple[windows.Window, ...] = ()  # this cluster's maintenance windows (fleet.yaml)
    reported: Mapping[str, tuple[int | None, str | None]] = field(default_factory=dict)
    """bundle -> (Helm revision, applied commit) as the last report said: a held release is unchanged."""


class Gate(Protocol):
    """The agent's Lease as a pass sees it (agent.lease.AgentLease)."""

    @property
    def held(self) -> bool: ...

    def acquire(self) -> str | None: ...

    def release(self) -> None: ...


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

    snapshot = _live_snapshot(ctx, plan.releases, histories)
    failures = state.load_failures(ctx.state_dir)
    failures_before = dict(failures)
    outcomes: list[ReleaseOutcome] = []
    states: dict[str, str] = {}
    for desired in plan.releases:
        if ctx.stop.is_set():
            log.info("pass_interrupted", remaining=desired.bundle)
            break
        outcome = _reconcile_release(ctx, desired, revision, histories, snapshot, states, failures)
        states[desired.bundle] = outcome.state
        outcomes.append(outcome)
        log.info("release_reconciled", bundle=desired.bundle, release=desired.release,
                 namespace=desired.namespace, action=outcome.action, state=outcome.state)  # fmt: skip
    if failures != failures_before:
        state.save_failures(ctx.state_dir, failures)
    outcomes += [_blocked_outcome(blocked, histories) for blocked in agent_plan.blocked]
    base = replace(base, releases=tuple(outcomes))

    why_not = _why_not_prune(revision, interrupted=ctx.stop.is_set())
    if why_not is None and _prunable(ctx, agent_plan, histories):
        why_not = _take_lease(ctx, histories)
    if why_not:
        if _prunable(ctx, agent_plan, histories):
            log.warning("prune_skipped", reason=why_not)
        return replace(base, prune_skipped=why_not)
    prunable = _prunable(ctx, agent_plan, histories)
    owned = len(_prunable(ctx, None, histories))
    refusal = brake.check(
        ctx.cluster,
        [f"{ns}/{name}" for ns, name in prunable],
        owned,
        settings.brake,
    )
    if refusal is not None:
        log.warning(
            "prune_refused", releases=list(refusal.releases), prune_id=refusal.prune_id, reason=refusal.reason
        )
        return replace(base, prune_refused=refusal, prune_skipped=refusal.message())
    return replace(base, pruned=_prune(ctx, agent_plan, histories))


def _blocked_outcome(
    blocked: fleet.BlockedRelease, histories: Mapping[tuple[str, str], ReleaseHistory]
) -> ReleaseOutcome:
    """A release held back by a problem in the repo: reported as it is, left exactly as it is."""
    history = histories.get((blocked.namespace, blocked.release))
    current = history.current if history is not None else None
    return ReleaseOutcome(
        bundle=blocked.bundle,
        release=blocked.release,
        namespace=blocked.namespace,
        state="Failed",
        message=blocked.reason,
        helm_revision=current.revision if current else None,
        chart_version=current.chart_version if current else "",
        applied_commit=current.labels.get(COMMIT_LABEL) if current else None,
    )


def _take_lease(ctx: PassContext, histories: dict[tuple[str, str], ReleaseHistory]) -> str | None:
    """None once this pass holds the agent's Lease (so it may change the cluster); else why not.

    Taking it fresh re-reads the releases: another agent may have changed them before it let go.
    """
    if ctx.lease is None:
        return None
    if ctx.lease.held:
        return None
    busy = ctx.lease.acquire()
    if busy:
        log.info("lease_busy", reason=busy)
        return busy
    try:
        fresh = group_releases(ctx.kube.helm_release_secrets())
    except KubeError as error:
        return f"the cluster's releases could not be read again: {error}"
    histories.clear()
    histories.update(fresh)
    return None


def _why_not_prune(revision: SourceRevision, *, interrupted: bool) -> str | None:
    if not revision.may_prune:
        return f"the source could not be fetched ({revision.error or 'offline'})"
    if interrupted:
        return "the pass was interrupted"
    return None


def _prunable(
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
    for namespace, name in _prunable(ctx, agent_plan, histories):
        try:
            with inflight.operation(ctx.state_dir, namespace, name, "uninstall") as started:
                ctx.helm.uninstall(release=name, namespace=namespace, on_start=started)
            pruned.append(f"{namespace}/{name}")
            log.info("release_pruned", release=name, namespace=namespace)
        except HelmError as error:
            log.error("prune_failed", release=name, namespace=namespace, error=str(error))
    return tuple(pruned)


# ------------------------------------------------------------------------------------- one release


def _reconcile_release(
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
        chart=_chart_name(desired),
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
            else _effective_values(ctx.kube, desired)
        )
    except _ValuesFromMissing as missing:
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
        return _held(ctx, desired, base, history, snapshot, revision.commit, gate)
    waiting = _operation_in_progress(ctx, desired, history) if action is Action.RECOVER_PENDING else None
    if waiting is None and action in _CHANGES_THE_CLUSTER:
        waiting = _take_lease(ctx, histories)
        if waiting is None and history is not histories.get((desired.namespace, desired.release)):
            history = histories.get((desired.namespace, desired.release))  # re-read with the lease
            decided = decide(history)
            if decided is not action:
                action = decided
                gate = _gate(ctx, desired, action, revision.commit, digest)
                if gate is not None and not gate.go:
                    return _held(ctx, desired, base, history, {}, revision.commit, gate)
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
        apply_error = _recover_pending(ctx, desired, history)
        if apply_error is None:
            message = f"recovered from {history.current.status}"
            history = _refreshed_history(ctx, desired)
            if history is None or history.current.digest != digest_label(digest):
                action = (
                    Action.INSTALL if history is None or history.last_deployed() is None else Action.UPGRADE
                )
                failures.pop(key, None)
                gate = _gate(ctx, desired, action, revision.commit, digest)  # a staged change waits
                if gate is not None and not gate.go:
                    return _held(ctx, desired, base, history, {}, revision.commit, gate)
    if action in (Action.INSTALL, Action.UPGRADE):
        apply_error, history = _install_or_upgrade(
            ctx, desired, values, digest, revision.commit, history, Path(str(revision.path))
        )
        if apply_error is None:
            failures.pop(key, None)
        else:
            if gate is not None and ctx.gates is not None and revision.commit:
                ctx.gates.failed(desired.bundle, revision.commit)
            failures[key] = actions.next_retry(
                failures.get(key), digest, apply_error, ctx.clock(), ctx.interval
            )

    current = history.current if history is not None else None
    unchanged_by_this_pass = history is histories.get((desired.namespace, desired.release))
    observed = _observe(ctx, current, snapshot if unchanged_by_this_pass else {})
    corrected = False
    if (
        observed.drifts
        and desired.correct_drift
        and action not in (Action.PAUSED, Action.WAIT)
        and apply_error is None
        and _take_lease(ctx, histories) is None
    ):
        corrected = _correct(ctx, desired, observed)
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
) -> ReleaseOutcome:
    """A staged change the gate holds: the current release keeps running, untouched."""
    current = history.current if history is not None else None
    observed = _observe(ctx, current, snapshot)
    failed = ctx.gates is not None and ctx.gates.has_failed(desired.bundle, commit)
    state = "Failed" if failed else "Pending"
    message = f"the change failed here and was rolled back; {gate.reason}" if failed else gate.reason
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


def _chart_name(desired: fleet.DesiredRelease) -> str:
    chart = desired.chart
    return chart.path or chart.oci_ref or f"{chart.repo_url}/{chart.name}"


class _ValuesFromMissing(Exception):
    pass


def _effective_values(kube: Kube, desired: fleet.DesiredRelease) -> tuple[dict[str, Any], str, str]:
    """Merged values with valuesFrom applied last, the values digest and the release's full digest."""
    values: dict[str, Any] = json.loads(json.dumps(desired.values))
    extra: list[Any] = []
    for ref in desired.values_from:
        namespace = ref.namespace or desired.namespace
        try:
            text = kube.read_value(ref.kind, namespace, ref.name, ref.key)
        except KubeError as error:
            raise _ValuesFromMissing(f"valuesFrom {ref.kind} {namespace}/{ref.name}: {error}") from None
        if text is None:
            if ref.optional:
                continue
            raise _ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} not found in the cluster"
            )
        parsed = parse_document(f"{ref.kind} {namespace}/{ref.name}", text)  # bounded: no alias bombs
        if isinstance(parsed, fleet.Problem):
            raise _ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} is not YAML "
                f"(line {parsed.line}: {parsed.message})"
            )
        loaded = parsed.data or {}
        if not isinstance(loaded, dict):
            raise _ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} is not a mapping"
            )
        extra.append(loaded)
        values = merge_values([values, loaded])
    values_digest = _sha256(values)
    digest = desired.digest if not extra else _sha256({"plan": desired.digest, "valuesFrom": extra})
    return values, values_digest, digest


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _install_or_upgrade(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    values: Mapping[str, Any],
    digest: str,
    commit: str | None,
    history: ReleaseHistory | None,
    repo_root: Path,
) -> tuple[str | None, ReleaseHistory | None]:
    """Run helm; on a failed upgrade roll back to the last good revision.  Returns (error, history)."""
    chart = _chart_ref(desired, repo_root)
    labels = {
        OWNER_LABEL: OWNER_VALUE,
        DIGEST_LABEL: digest_label(digest),
        BUNDLE_LABEL: desired.bundle,
        CLUSTER_LABEL: ctx.cluster,
        COMMIT_LABEL: (commit or "unknown")[:40],
        TIMEOUT_LABEL: str(desired.options.timeout_seconds),
    }
    try:  # decrypted only now, only for helm: never in the plan, a report, a log or a file
        values, hidden = sops.reveal(ctx.sops, values, desired.encrypted_files, repo_root)
    except sops.SopsError as error:
        log.error("values_decryption_failed", release=desired.release, error=str(error))
        return str(error), history
    try:
        with inflight.operation(ctx.state_dir, desired.namespace, desired.release, "upgrade") as started:
            _upgrade_install(ctx, desired, chart, values, labels, started)
        return None, _refreshed_history(ctx, desired)
    except HelmError as error:
        message = sops.hide(str(error), hidden)
    log.error("helm_apply_failed", release=desired.release, namespace=desired.namespace, error=message)
    refreshed = _refreshed_history(ctx, desired)
    previous = history.last_deployed() if history is not None else None
    if "another operation" in message:  # Helm's own lock: someone else's operation, never ours to undo
        return message, refreshed
    if previous is not None and refreshed is not None and refreshed.current.revision != previous.revision:
        try:
            _rollback(ctx, desired, previous.revision)
            message += f" (rolled back to revision {previous.revision})"
        except HelmError as rollback_error:
            message += f" (rollback to revision {previous.revision} failed: {rollback_error})"
        refreshed = _refreshed_history(ctx, desired)
    return message, refreshed


def _upgrade_install(
    ctx: PassContext,
    desired: fleet.DesiredRelease,
    chart: ChartRef,
    values: Mapping[str, Any],
    labels: Mapping[str, str],
    started: Callable[[int], None],
) -> None:
    options = desired.options
    ctx.helm.upgrade_install(
        release=desired.release,
        namespace=desired.namespace,
        chart=chart,
        values=values,
        labels=labels,
        timeout_seconds=options.timeout_seconds,
        wait=options.wait,
        max_history=options.max_history,
        on_start=started,
    )


def _rollback(ctx: PassContext, desired: fleet.DesiredRelease, revision: int) -> None:
    with inflight.operation(ctx.state_dir, desired.namespace, desired.release, "rollback") as started:
        ctx.helm.rollback(
            release=desired.release,
            namespace=desired.namespace,
            revision=revision,
            timeout_seconds=desired.options.timeout_seconds,
            wait=False,
            on_start=started,
        )


def _chart_ref(desired: fleet.DesiredRelease, repo_root: Path) -> ChartRef:
    chart = desired.chart
    if chart.kind == "path":
        return ChartRef(str(repo_root / str(chart.path)))
    if chart.kind == "oci":
        return ChartRef(str(chart.oci_ref), version=chart.version)
    return ChartRef(str(chart.name), repo_url=chart.repo_url, version=chart.version)


def _recover_pending(ctx: PassContext, desired: fleet.DesiredRelease, history: ReleaseHistory) -> str | None:
    """A crash left the release pending-*: go back to the last good revision, or start over."""
    current = history.current
    previous = history.last_deployed(before=current.revision)
    if desired.bundle == SELF_BUNDLE:
        own = selfpending.judge_live(ctx.kube, desired.namespace, history, ctx.clock())
        if own.decision == "forward":  # a rollback to the pending revision itself: nothing restarts
            log.warning("self_upgrade_rolled_forward", release=desired.release, reason=own.reason)
            selfpending.record_forward(ctx.kube, desired.namespace, history, own.reason, ctx.clock())
            previous = current
    log.warning("release_pending_recovery", release=desired.release, status=current.status)
    try:
        if previous is None:
            with inflight.operation(
                ctx.state_dir, desired.namespace, desired.release, "uninstall"
            ) as started:
                ctx.helm.uninstall(release=desired.release, namespace=desired.namespace, on_start=started)
        else:
            _rollback(ctx, desired, previous.revision)
    except HelmError as error:
        return f"release was left {current.status} and could not be recovered: {error}"
    return None


def _refreshed_history(ctx: PassContext, desired: fleet.DesiredRelease) -> ReleaseHistory | None:
    """The release's history as it is now, after this pass changed it (one LIST of its records only).

    Helm just ran, and a chart may have brought or removed CRDs: kinds are looked up afresh.
    """
    ctx.kube.forget_discovery()
    secrets = ctx.kube.helm_release_secrets(namespace=desired.namespace, release=desired.release)
    return group_releases(secrets).get((desired.namespace, desired.release))


@dataclass(frozen=True)
class _Observed:
    healths: tuple[health.ResourceHealth, ...]
    drifts: tuple[drift.Drift, ...]
    objects: Mapping[ObjectKey, Mapping[str, Any]]
    live: Mapping[ObjectKey, Mapping[str, Any] | None] = field(default_factory=dict)
    controller_replicas: frozenset[ObjectKey] = frozenset()  # spec.replicas belongs to an autoscaler


def _live_snapshot(
    ctx: PassContext,
    planned: Sequence[fleet.DesiredRelease],
    histories: Mapping[tuple[str, str], ReleaseHistory],
) -> Mapping[ObjectKey, dict[str, Any] | None]:
    """The live state of every object of every planned release, read with one LIST per kind.

    Releases this pass leaves alone are judged on it; one it installs or upgrades is read again.
    """
    keys = [
        object_key(obj)
        for desired in planned
        if (history := histories.get((desired.namespace, desired.release))) is not None
        for obj in history.current.objects
    ]
    try:
        return ctx.kube.live_objects(keys)
    except KubeError as error:
        log.warning("live_snapshot_failed", error=str(error))
        return {}


def _observe(
    ctx: PassContext, record: ReleaseRecord | None, snapshot: Mapping[ObjectKey, dict[str, Any] | None]
) -> _Observed:
    objects = {object_key(o): o for o in (record.objects if record is not None else ())}
    if not objects:
        return _Observed((), (), {})
    live: Mapping[ObjectKey, dict[str, Any] | None]
    if all(key in snapshot for key in objects):
        live = snapshot
    else:
        try:
            live = ctx.kube.live_objects(objects)
        except KubeError as error:
            unknown = tuple(
                health.ResourceHealth(
                    kind=k[1], namespace=k[2], name=k[3], status="Unknown", message=str(error)
                )
                for k in objects
            )
            return _Observed(unknown, (), objects)
    scaled_by_hpa = correction.hpa_targets(objects.values())
    healths = []
    drifts = []
    autoscaled = set()
    for key, wanted in objects.items():
        current = live.get(key)
        if (key[0], key[1]) in ctx.kube.unserved:
            healths.append(health.not_served(key[0], key[1], key[2], key[3]))
            continue  # nothing to correct until the kind is served again: reported, not retried
        assessed = health.assess(current) if current is not None else health.missing(key[1], key[2], key[3])
        healths.append(health.within_autoscaler(assessed, current, _scaler_of(key, objects, live)))
        if (key[1], key[3]) in scaled_by_hpa or correction.replicas_owned_by_autoscaler(current):
            autoscaled.add(key)
        difference = drift.compare(wanted, current, ignore_replicas=key in autoscaled)
        if difference is not None:
            drifts.append(difference)
    return _Observed(tuple(healths), tuple(drifts), objects, live, frozenset(autoscaled))


def _scaler_of(
    key: ObjectKey,
    objects: Mapping[ObjectKey, Mapping[str, Any]],
    live: Mapping[ObjectKey, Mapping[str, Any] | None],
) -> Mapping[str, Any] | None:
    """The live HPA of the same release that scales the object ``key``, if any."""
    for hpa_key, obj in objects.items():
        if hpa_key[1] != "HorizontalPodAutoscaler" or hpa_key[2] != key[2]:
            continue
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if (ref.get("kind"), ref.get("name")) == (key[1], key[3]):
            return live.get(hpa_key)
    return None


def _correct(ctx: PassContext, desired: fleet.DesiredRelease, observed: _Observed) -> bool:
    """Re-apply Helm's own version of each drifted object, as Helm's field manager (see correction)."""
    corrected = 0
    for difference in observed.drifts:
        wanted = observed.objects.get(difference.key)
        if wanted is None:
            continue
        body = correction.correction_body(
            wanted,
            observed.live.get(difference.key),
            release=desired.release,
            release_namespace=desired.namespace,
            keep_live_replicas=difference.key in observed.controller_replicas,
        )
        try:
            ctx.kube.apply(body, desired.namespace, field_manager=HELM_FIELD_MANAGER)
            corrected += 1
        except KubeError as error:
            log.error("drift_correction_failed", object=difference.message, error=str(error))
    log.info("drift_corrected", release=desired.release, objects=corrected)
    return corrected > 0
