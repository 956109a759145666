"""The report contract's data: versions, bounds, bundle states and the dataclasses of a report.

Standard library only (the agent imports it).  :mod:`hub.contract` re-exports everything here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CURRENT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)

# Severity order, worst first: a cluster's health is the worst state of its bundles.
BUNDLE_STATES = ("Failed", "Degraded", "Modified", "InProgress", "Pending", "Paused", "Ready")
BUNDLE_SEVERITY = {state: rank for rank, state in enumerate(BUNDLE_STATES)}

MAX_NAME = 253  # Kubernetes object names / cluster names
MAX_SHORT = 512  # commits, digests, versions, urls, label values
MAX_MESSAGE = 4096  # last error verbatim, bounded
MAX_LABELS = 64
MAX_BUNDLES = 500
MAX_RESOURCES = 10  # non_ready / modified resources listed per bundle
MAX_PROBLEMS = 100
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_INT = 2**53 - 1  # every integer stays exact in any JSON reader (JavaScript's Number included)


class ContractError(ValueError):
    """A report does not follow the contract; ``field_path`` names the offending field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}" if field_path else message)
        self.field_path = field_path
        self.message = message


def worst_state(states: Iterable[str]) -> str:
    """The worst of ``states`` in severity order; ``Ready`` when there are none."""
    return min(states, key=lambda state: BUNDLE_SEVERITY.get(state, 0), default="Ready")


def cluster_health(
    bundle_states: Iterable[str], source_error: str | None, cluster_api_error: str | None = None
) -> str:
    """Health of a cluster: its worst bundle; Failed if the source/plan failed and nothing is known,
    and Failed whenever the agent could not reach its own cluster's API (nothing it says is current).

    A paused bundle is an operator's decision, not a health problem: it counts only when every
    bundle of the cluster is paused (the cluster is then ``Paused``).
    """
    if cluster_api_error:
        return "Failed"
    states = list(bundle_states)
    if not states:
        return "Failed" if source_error else "Ready"
    active = [state for state in states if state != "Paused"]
    return worst_state(active) if active else "Paused"


def utc_now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Problem:
    """A fleet repo validation problem."""

    file: str
    line: int | None
    message: str


@dataclass(frozen=True)
class ResourceStatus:
    kind: str
    namespace: str
    name: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class SourceStatus:
    url: str
    ref: str
    desired_commit: str | None = None
    applied_commit: str | None = None
    error: str | None = None
    errors: list[Problem] = field(default_factory=list)
    # Signature verification (absent when it is off): "verified" or "refused", the commit (or tag)
    # checked, who signed it (principal or user id, and key) and, when refused, why.
    signature: str | None = None
    signature_commit: str | None = None
    signature_signer: str | None = None
    signature_reason: str | None = None


@dataclass(frozen=True)
class ErrorFields:
    """What failed this pass, one field per boundary (optional in version 2; absent means none).

    ``source.error`` stays what it always was — the Git source or the fleet repo — for older readers.
    """

    source: str | None = None  # the Git source could not be fetched (the last good commit is used)
    fleet_repo: str | None = None  # the fleet repo at the commit is invalid, or no plan for this cluster
    cluster_api: str | None = None  # the cluster's API server could not be reached or refused the agent
    hub: str | None = None  # the agent's last attempt to deliver a report to the hub failed

    LABELS = (
        ("source", "source"),
        ("fleet_repo", "fleet repo"),
        ("cluster_api", "cluster API"),
        ("hub", "hub"),
    )

    def items(self) -> list[tuple[str, str]]:
        """(label, message) of every error that is set, in a fixed order."""
        return [(label, text) for key, label in self.LABELS if (text := getattr(self, key))]


@dataclass(frozen=True)
class BundleStatus:
    bundle: str
    release: str
    namespace: str
    state: str
    desired_commit: str | None = None
    applied_commit: str | None = None
    chart: str = ""
    chart_version: str = ""
    digest: str = ""
    values_digest: str = ""
    helm_revision: int | None = None
    resources_ready: int = 0
    resources_total: int = 0
    non_ready: list[ResourceStatus] = field(default_factory=list)
    modified: list[ResourceStatus] = field(default_factory=list)
    message: str = ""
    last_transition: str = ""


@dataclass(frozen=True)
class StatusReport:
    version: int
    cluster: str
    sequence: int
    generated_at: str
    agent_version: str
    interval_seconds: int
    labels: dict[str, str]
    source: SourceStatus
    bundles: list[BundleStatus]
    agent_arch: str = ""  # optional: the agent's machine (``uname -m``), e.g. x86_64, aarch64, armv7l
    # optional: the agent's image and its last self-upgrade (agent.selfupgrade): images and a result
    # ("succeeded", "in-progress" or "rolled-back: why").
    agent_image: str = ""
    self_upgrade_from: str = ""
    self_upgrade_to: str = ""
    self_upgrade_result: str = ""
    errors: ErrorFields = field(default_factory=ErrorFields)
    rollout: dict[str, Any] | None = None  # staged rollouts and the deletion brake (hub.rollout_contract)

    @property
    def health(self) -> str:
        return cluster_health((b.state for b in self.bundles), self.source.error, self.errors.cluster_api)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (hand-written: ``dataclasses.asdict`` is ten times slower)."""
        source = self.source
        return {
            **self.__dict__,
            "labels": dict(self.labels),
            "errors": dict(self.errors.__dict__),
            "source": {**source.__dict__, "errors": [dict(p.__dict__) for p in source.errors]},
            "bundles": [
                {
                    **b.__dict__,
                    "non_ready": [dict(r.__dict__) for r in b.non_ready],
                    "modified": [dict(r.__dict__) for r in b.modified],
                }
                for b in self.bundles
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_json_dict(), separators=(",", ":"), ensure_ascii=False)


SIGNATURE_STATES = ("verified", "refused")
