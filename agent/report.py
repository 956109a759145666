"""Turn a pass's outcome into the versioned status report of ``hub.contract`` and keep the last one.

Pure except for :func:`save` and :func:`load_last`, which use the state directory, so that
``flotilla-agent status`` works with no network and no cluster.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__, state
from agent.reconcile import UNREACHED, PassOutcome, ReleaseOutcome
from agent.signatures import Verdict
from hub import contract, rollout_contract

MAX_LISTED = contract.MAX_RESOURCES


def build(
    outcome: PassOutcome,
    *,
    sequence: int,
    source_url: str,
    ref: str,
    interval_seconds: float,
    previous: contract.StatusReport | None = None,
    now: datetime | None = None,
    hub_error: str | None = None,
    signature: Verdict | None = None,
) -> contract.StatusReport:
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    transitions = _previous_transitions(previous)
    bundles = [_bundle(release, outcome.commit, transitions, generated) for release in outcome.releases]
    if outcome.cluster_error and not bundles and previous is not None:
        bundles = _last_known(previous.bundles, "not checked this pass: the cluster API is unreachable")
    elif outcome.unreached and previous is not None:
        bundles = _carry_unreached(bundles, set(outcome.unreached), previous.bundles)
    repo_error = outcome.error
    if outcome.problems and not repo_error:
        commit = (outcome.commit or "unknown")[:12]
        repo_error = f"the fleet repo at {commit} is invalid: {len(outcome.problems)} problem(s)"
    error = outcome.source_error or repo_error
    # The cluster is "at" a commit when every bundle it runs (paused ones aside) is at that commit.
    applied = {b.applied_commit for b in bundles if b.state != "Paused"} or {outcome.commit}
    return contract.StatusReport(
        version=contract.CURRENT_VERSION,
        cluster=outcome.cluster,
        sequence=sequence,
        generated_at=generated,
        agent_version=__version__,
        agent_arch=platform.machine(),
        interval_seconds=max(1, round(interval_seconds)),
        labels=dict(outcome.labels),
        source=contract.SourceStatus(
            url=source_url,
            ref=ref,
            desired_commit=outcome.commit,
            applied_commit=applied.pop() if len(applied) == 1 else None,
            error=error[: contract.MAX_MESSAGE] if error else None,
            errors=[
                contract.Problem(file=p.file, line=p.line, message=p.message[: contract.MAX_MESSAGE])
                for p in outcome.problems[: contract.MAX_PROBLEMS]
            ],
            **_signature(signature),
        ),
        bundles=bundles,
        errors=contract.ErrorFields(
            source=_bounded(outcome.source_error),
            fleet_repo=_bounded(repo_error),
            cluster_api=_bounded(outcome.cluster_error),
            hub=_bounded(hub_error),
        ),
        rollout=_rollout(outcome),
    )


def _bounded(text: str | None) -> str | None:
    return text[: contract.MAX_MESSAGE] if text else None


def _carry_unreached(
    bundles: list[contract.BundleStatus], unreached: set[str], previous: list[contract.BundleStatus]
) -> list[contract.BundleStatus]:
    """An interrupted pass reports the bundles it did not reach as the previous report had them, so
    a SIGTERM mid-pass never tells the hub (or a rollout's wave) that they are gone or reset."""
    before = {b.bundle: b for b in previous}
    carried = {
        b.bundle: _last_known([before[b.bundle]], UNREACHED)[0]
        for b in bundles
        if b.bundle in unreached and b.bundle in before
    }
    return [carried.get(b.bundle, b) for b in bundles]


def _last_known(bundles: list[contract.BundleStatus], note: str) -> list[contract.BundleStatus]:
    """The previous report's bundles, each saying why it was not checked this pass."""
    return [
        replace(
            b, message=(f"{note}; last known: {b.message}" if b.message else note)[: contract.MAX_MESSAGE]
        )
        for b in bundles
    ]


def _rollout(outcome: PassOutcome) -> dict[str, Any] | None:
    """Each staged bundle's wave facts and a refused prune, or None when there are neither."""
    staged = {
        r.bundle: {**r.rollout, "error": r.message[:1024] if r.state in ("Failed", "Degraded") else ""}
        for r in outcome.releases
        if r.rollout is not None
    }
    refusal = outcome.prune_refused
    if not staged and refusal is None:
        return None
    brake = None
    if refusal is not None:
        brake = {
            "releases": list(refusal.releases[: rollout_contract.MAX_BRAKE_RELEASES]),
            "prune_id": refusal.prune_id,
            "owned": refusal.owned,
            "reason": refusal.reason[:1024],
            "how_to_confirm": refusal.how_to_confirm[:1024],
        }
    return {"bundles": staged, "brake": brake}


def _signature(verdict: Verdict | None) -> dict[str, str | None]:
    if verdict is None:
        return {}
    who = verdict.signer or ("unknown" if verdict.key else None)
    signer = " ".join(filter(None, [who, f"(key {verdict.key})" if verdict.key else None]))
    return {
        "signature": "verified" if verdict.accepted else "refused",
        "signature_commit": verdict.subject[: contract.MAX_SHORT],
        "signature_signer": signer[: contract.MAX_SHORT] or None,
        "signature_reason": verdict.reason[: contract.MAX_MESSAGE] or None,
    }


def _previous_transitions(previous: contract.StatusReport | None) -> Mapping[str, tuple[str, str]]:
    if previous is None:
        return {}
    return {b.bundle: (b.state, b.last_transition) for b in previous.bundles}


def _bundle(
    release: ReleaseOutcome, commit: str | None, transitions: Mapping[str, tuple[str, str]], now: str
) -> contract.BundleStatus:
    previous_state, previous_time = transitions.get(release.bundle, ("", ""))
    return contract.BundleStatus(
        bundle=release.bundle,
        release=release.release,
        namespace=release.namespace,
        state=release.state,
        desired_commit=commit,
        applied_commit=release.applied_commit,
        chart=release.chart[: contract.MAX_SHORT],
        chart_version=release.chart_version[: contract.MAX_SHORT],
        digest=release.digest,
        values_digest=release.values_digest,
        helm_revision=release.helm_revision,
        resources_ready=release.resources_ready,
        resources_total=release.resources_total,
        non_ready=[
            contract.ResourceStatus(
                kind=h.kind, namespace=h.namespace, name=h.name, status=h.status, message=h.detail[:1024]
            )
            for h in release.non_ready[:MAX_LISTED]
        ],
        modified=[
            contract.ResourceStatus(
                kind=d.kind, namespace=d.namespace, name=d.name, status="Modified", message=d.detail[:1024]
            )
            for d in release.modified[:MAX_LISTED]
        ],
        message=release.message[: contract.MAX_MESSAGE],
        last_transition=previous_time if previous_state == release.state and previous_time else now,
    )


def save(state_dir: Path, report: contract.StatusReport) -> None:
    state.write_json_atomic(state_dir / state.LAST_REPORT_FILE, report.to_json_dict())


def load_last(state_dir: Path) -> contract.StatusReport | None:
    raw = state.read_json(state_dir / state.LAST_REPORT_FILE)
    if raw is None:
        return None
    try:
        return contract.parse_report(raw)
    except contract.ContractError:
        return None
