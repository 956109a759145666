"""The apply step of a pass: effective values, helm upgrade --install, rollback of a failed upgrade,
recovery of a release a crash left pending, and re-reading a release after helm changed it.

``agent.helm`` runs helm; this module chooses its arguments and what to do when it fails.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from agent import fleet, inflight, sops
from agent.fleet.merge import merge_values
from agent.fleet.yamldoc import parse_document
from agent.helm import ChartRef, HelmError
from agent.kube import Kube, KubeError
from agent.passcontext import PassContext
from agent.releases import (
    BUNDLE_LABEL,
    CLUSTER_LABEL,
    COMMIT_LABEL,
    DIGEST_LABEL,
    OWNER_LABEL,
    OWNER_VALUE,
    TIMEOUT_LABEL,
    ReleaseHistory,
    digest_label,
    group_releases,
)

log = structlog.get_logger("agent.reconcile")


def chart_name(desired: fleet.DesiredRelease) -> str:
    chart = desired.chart
    return chart.path or chart.oci_ref or f"{chart.repo_url}/{chart.name}"


class ValuesFromMissing(Exception):
    pass


def effective_values(kube: Kube, desired: fleet.DesiredRelease) -> tuple[dict[str, Any], str, str]:
    """Merged values with valuesFrom applied last, the values digest and the release's full digest."""
    values: dict[str, Any] = json.loads(json.dumps(desired.values))
    extra: list[Any] = []
    for ref in desired.values_from:
        namespace = ref.namespace or desired.namespace
        try:
            text = kube.read_value(ref.kind, namespace, ref.name, ref.key)
        except KubeError as error:
            raise ValuesFromMissing(f"valuesFrom {ref.kind} {namespace}/{ref.name}: {error}") from None
        if text is None:
            if ref.optional:
                continue
            raise ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} not found in the cluster"
            )
        parsed = parse_document(f"{ref.kind} {namespace}/{ref.name}", text)  # bounded: no alias bombs
        if isinstance(parsed, fleet.Problem):
            raise ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} is not YAML "
                f"(line {parsed.line}: {parsed.message})"
            )
        loaded = parsed.data or {}
        if not isinstance(loaded, dict):
            raise ValuesFromMissing(
                f"valuesFrom {ref.kind} {namespace}/{ref.name} key {ref.key!r} is not a mapping"
            )
        extra.append(loaded)
        values = merge_values([values, loaded])
    values_digest = _sha256(values)
    digest = desired.digest if not extra else _sha256({"plan": desired.digest, "valuesFrom": extra})
    return values, values_digest, digest


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def install_or_upgrade(
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
        return None, refreshed_history(ctx, desired)
    except HelmError as error:
        message = sops.hide(str(error), hidden)
    log.error("helm_apply_failed", release=desired.release, namespace=desired.namespace, error=message)
    refreshed = refreshed_history(ctx, desired)
    previous = history.last_deployed() if history is not None else None
    if "another operation" in message:  # Helm's own lock: someone else's operation, never ours to undo
        return message, refreshed
    if previous is not None and refreshed is not None and refreshed.current.revision != previous.revision:
        try:
            rollback(ctx, desired, previous.revision)
            message += f" (rolled back to revision {previous.revision})"
        except HelmError as rollback_error:
            message += f" (rollback to revision {previous.revision} failed: {rollback_error})"
        refreshed = refreshed_history(ctx, desired)
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


def rollback(ctx: PassContext, desired: fleet.DesiredRelease, revision: int) -> None:
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


def recover_pending(ctx: PassContext, desired: fleet.DesiredRelease, history: ReleaseHistory) -> str | None:
    """A crash left the release pending-*: go back to the last good revision, or start over."""
    current = history.current
    previous = history.last_deployed(before=current.revision)
    log.warning("release_pending_recovery", release=desired.release, status=current.status)
    try:
        if previous is None:
            with inflight.operation(
                ctx.state_dir, desired.namespace, desired.release, "uninstall"
            ) as started:
                ctx.helm.uninstall(release=desired.release, namespace=desired.namespace, on_start=started)
        else:
            rollback(ctx, desired, previous.revision)
    except HelmError as error:
        return f"release was left {current.status} and could not be recovered: {error}"
    return None


def refreshed_history(ctx: PassContext, desired: fleet.DesiredRelease) -> ReleaseHistory | None:
    """The release's history as it is now, after this pass changed it (one LIST of its records only).

    Helm just ran, and a chart may have brought or removed CRDs: kinds are looked up afresh.
    """
    ctx.kube.forget_discovery()
    secrets = ctx.kube.helm_release_secrets(namespace=desired.namespace, release=desired.release)
    return group_releases(secrets).get((desired.namespace, desired.release))
