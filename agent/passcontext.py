"""What a reconcile pass needs (its context) and what it returns (its outcome), shared by its steps.

Also the one rule every step that changes the cluster follows first: take the agent's Lease
(:func:`take_lease`), re-reading the releases when it was just taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from agent import brake, drift, fleet, gates, health, inflight, sops
from agent.actions import Action
from agent.fleet import windows
from agent.helm import Helm
from agent.kube import Kube, KubeError
from agent.releases import ReleaseHistory, group_releases

log = structlog.get_logger("agent.reconcile")


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
    unreached: tuple[str, ...] = ()  # bundles the pass stopped before (the agent was stopping)
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
            and not self.unreached
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
    checkout_at: Callable[[str], Path | None] | None = None
    """A checkout of an older fleet commit (``Source.checkout_at``): a wave's released revision."""


class Gate(Protocol):
    """The agent's Lease as a pass sees it (agent.lease.AgentLease)."""

    @property
    def held(self) -> bool: ...

    def acquire(self) -> str | None: ...

    def release(self) -> None: ...


def take_lease(ctx: PassContext, histories: dict[tuple[str, str], ReleaseHistory]) -> str | None:
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
