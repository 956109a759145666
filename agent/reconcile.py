"""One reconcile pass: source → plan → apply → health → drift → prune, returning what happened.

This is the single ladder of steps; each step's work lives in its own module (``source``, ``fleet``,
``actions``, ``helm``, ``kube``, ``health``, ``drift``, ``bundlestate``).  The pass never raises for
a problem it can report: every failure ends up in the returned :class:`PassOutcome`.

Safety rule: releases are pruned only when the source was fetched fresh, the repo validated and
the plan succeeded.  A cut network, a broken commit or an unknown cluster never deletes anything.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog
import yaml

from agent import actions, bundlestate, drift, fleet, health, sops, state
from agent.actions import Action, Failure
from agent.fleet.merge import merge_values
from agent.helm import ChartRef, Helm, HelmError
from agent.kube import Kube, KubeError, ObjectKey, object_key
from agent.releases import (
    BUNDLE_LABEL,
    CLUSTER_LABEL,
    COMMIT_LABEL,
    DIGEST_LABEL,
    OWNER_LABEL,
    OWNER_VALUE,
    ReleaseHistory,
    ReleaseRecord,
    digest_label,
    group_releases,
)
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


@dataclass(frozen=True)
class PassOutcome:
    cluster: str
    labels: Mapping[str, str] = field(default_factory=dict)
    commit: str | None = None
    source_error: str | None = None
    offline: bool = False
    problems: tuple[fleet.Problem, ...] = ()
    error: str | None = None  # a pass-level failure: plan, cluster API unreachable, ...
    releases: tuple[ReleaseOutcome, ...] = ()
    pruned: tuple[str, ...] = ()
    prune_skipped: str | None = None  # why pruning was not attempted, when it was not
    helm_calls: tuple[str, ...] = ()
    api_writes: int = 0
    duration_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Everything planned is Ready (or paused on purpose) and nothing failed: ``once`` exits 0."""
        return (
            self.error is None
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
    sops: sops.Decryptor | None = None  # decrypts SOPS-encrypted values files (only for helm)


def reconcile_once(ctx: PassContext, revision: SourceRevision) -> PassOutcome:
    """Run one pass over a synced source revision."""
    started = time.monotonic()
    writes_before = ctx.kube.writes
    calls_before = len(ctx.helm.calls)
    outcome = _reconcile(ctx, revision)
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
        repo = fleet.load_repo(revision.path)
    except fleet.FleetRepoError as error:
        log.error("fleet_repo_invalid", commit=revision.commit, problems=len(error.problems))
        return replace(base, problems=tuple(error.problems), prune_skipped="the fleet repo failed validation")
    try:
        plan = fleet.plan_cluster(repo, ctx.cluster)
    except fleet.UnknownClusterError as error:
        return replace(base, error=str(error), prune_skipped="the plan failed")
    base = replace(base, labels=dict(plan.cluster.labels))
    try:
        histories = group_releases(ctx.kube.helm_release_secrets())
    except KubeError as error:
        return replace(base, error=str(error), prune_skipped="the cluster's releases could not be read")

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
    base = replace(base, releases=tuple(outcomes))

    why_not = _why_not_prune(revision, interrupted=ctx.stop.is_set())
    if why_not:
        if _prunable(ctx, plan.releases, histories):
            log.warning("prune_skipped", reason=why_not)
        return replace(base, prune_skipped=why_not)
    return replace(base, pruned=_prune(ctx, plan.releases, histories))


def _why_not_prune(revision: SourceRevision, *, interrupted: bool) -> str | None:
    if not revision.may_prune:
        return f"the source could not be fetched ({revision.error or 'offline'})"
    if interrupted:
        return "the pass was interrupted"
    return None


def _prunable(
    ctx: PassContext,
    planned: Sequence[fleet.DesiredRelease],
    histories: Mapping[tuple[str, str], ReleaseHistory],
) -> list[tuple[str, str]]:
    wanted = {(r.namespace, r.release) for r in planned}
    return sorted(
        key
        for key, history in histories.items()
        if history.current.owned
        and history.current.labels.get(CLUSTER_LABEL) == ctx.cluster
        and key not in wanted
    )


def _prune(
    ctx: PassContext,
    planned: Sequence[fleet.DesiredRelease],
    histories: Mapping[tuple[str, str], ReleaseHistory],
) -> tuple[str, ...]:
    pruned = []
    for namespace, name in _prunable(ctx, planned, histories):
        try:
            ctx.helm.uninstall(release=name, namespace=namespace)
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
    histories: Mapping[tuple[str, str], ReleaseHistory],
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
    action = actions.decide(
        digest=digest,
        history=history,
        paused=desired.paused,
        dependencies_ready=not blocked,
        failure=failures.get(key),
        now=ctx.clock(),
    )
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
    if action in (Action.INSTALL, Action.UPGRADE):
        apply_error, history = _install_or_upgrade(
            ctx, desired, values, digest, revision.commit, history, Path(str(revision.path))
        )
        if apply_error is None:
            failures.pop(key, None)
        else:
            failures[key] = actions.next_retry(
                failures.get(key), digest, apply_error, ctx.clock(), ctx.interval
            )

    current = history.current if history is not None else None
    unchanged_by_this_pass = history is histories.get((desired.namespace, desired.release))
    observed = _observe(ctx, current, snapshot if unchanged_by_this_pass else {})
    corrected = False
    if observed.drifts and desired.correct_drift and action is not Action.PAUSED and apply_error is None:
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
    )


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
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            raise _ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} is not YAML"
            ) from None
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
    }
    options = desired.options
    try:  # decrypted only now, only for helm: never in the plan, a report, a log or a file
        values, hidden = sops.reveal(ctx.sops, values, desired.encrypted_files, repo_root)
    except sops.SopsError as error:
        log.error("values_decryption_failed", release=desired.release, error=str(error))
        return str(error), history
    try:
        ctx.helm.upgrade_install(
            release=desired.release,
            namespace=desired.namespace,
            chart=chart,
            values=values,
            labels=labels,
            timeout_seconds=options.timeout_seconds,
            wait=options.wait,
            max_history=options.max_history,
        )
        return None, _refreshed_history(ctx, desired)
    except HelmError as error:
        message = sops.hide(str(error), hidden)
    log.error("helm_apply_failed", release=desired.release, namespace=desired.namespace, error=message)
    refreshed = _refreshed_history(ctx, desired)
    previous = history.last_deployed() if history is not None else None
    if previous is not None and refreshed is not None and refreshed.current.revision != previous.revision:
        try:
            ctx.helm.rollback(
                release=desired.release,
                namespace=desired.namespace,
                revision=previous.revision,
                timeout_seconds=options.timeout_seconds,
                wait=False,
            )
            message += f" (rolled back to revision {previous.revision})"
        except HelmError as rollback_error:
            message += f" (rollback to revision {previous.revision} failed: {rollback_error})"
        refreshed = _refreshed_history(ctx, desired)
    return message, refreshed


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
    log.warning("release_pending_recovery", release=desired.release, status=current.status)
    try:
        if previous is None:
            ctx.helm.uninstall(release=desired.release, namespace=desired.namespace)
        else:
            ctx.helm.rollback(
                release=desired.release,
                namespace=desired.namespace,
                revision=previous.revision,
                timeout_seconds=desired.options.timeout_seconds,
                wait=False,
            )
    except HelmError as error:
        return f"release was left {current.status} and could not be recovered: {error}"
    return None


def _refreshed_history(ctx: PassContext, desired: fleet.DesiredRelease) -> ReleaseHistory | None:
    """The release's history as it is now, after this pass changed it (one LIST of its records only)."""
    secrets = ctx.kube.helm_release_secrets(namespace=desired.namespace, release=desired.release)
    return group_releases(secrets).get((desired.namespace, desired.release))


@dataclass(frozen=True)
class _Observed:
    healths: tuple[health.ResourceHealth, ...]
    drifts: tuple[drift.Drift, ...]
    objects: Mapping[ObjectKey, Mapping[str, Any]]


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
    scaled_by_hpa = _hpa_targets(objects.values())
    healths = []
    drifts = []
    for key, wanted in objects.items():
        current = live.get(key)
        healths.append(
            health.assess(current) if current is not None else health.missing(key[1], key[2], key[3])
        )
        difference = drift.compare(wanted, current, ignore_replicas=(key[1], key[3]) in scaled_by_hpa)
        if difference is not None:
            drifts.append(difference)
    return _Observed(tuple(healths), tuple(drifts), objects)


def _hpa_targets(objects: Any) -> set[tuple[str, str]]:
    targets = set()
    for obj in objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            targets.add((str(ref.get("kind", "")), str(ref.get("name", ""))))
    return targets


def _correct(ctx: PassContext, desired: fleet.DesiredRelease, observed: _Observed) -> bool:
    """Re-apply the release's own version of each drifted object (server-side apply)."""
    corrected = 0
    for difference in observed.drifts:
        wanted = observed.objects.get(difference.key)
        if wanted is None:
            continue
        try:
            ctx.kube.apply(wanted, desired.namespace)
            corrected += 1
        except KubeError as error:
            log.error("drift_correction_failed", object=difference.message, error=str(error))
    log.info("drift_corrected", release=desired.release, objects=corrected)
    return corrected > 0
