"""How healthy is one live Kubernetes object?  Pure rules over the API server's JSON, kstatus-style.

``assess(obj)`` looks at a live object as a plain dict and returns a :class:`ResourceHealth` with
one of four statuses:

- ``Ready``: the object has reached the state its spec asks for;
- ``InProgress``: it is getting there (a rollout, a pending pod, a controller that has not yet
  observed the latest generation);
- ``Failed``: it will not get there without a change (a crash-looping pod, a failed Job, a
  Deployment past its progress deadline, a ``Stalled`` condition);
- ``Unknown``: the object says too little, or something malformed, to tell.

The rules follow the spirit of sigs.k8s.io/cli-utils' kstatus: a controller that has not observed
the current ``metadata.generation`` is always InProgress; workloads compare their status counters
with the spec; other objects with ``Ready``/``Stalled``/``Reconciling`` conditions are read
generically; objects without status (ConfigMap, Secret, RBAC, ...) are Ready once they exist.
Every message names the object ("Deployment default/web: 1 of 2 replicas available").

The per-kind rules live in :mod:`agent.health_rules`, the readers of status fields in
:mod:`agent.health_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent.health_fields import Malformed, as_mapping, stale_generation, v1_hpa_conditions
from agent.health_rules import RULES, Status, generic_rule

# Worst first: the order in which non-ready resources are shown.
SEVERITY: Final[Mapping[str, int]] = {"Failed": 3, "Unknown": 2, "InProgress": 1, "Ready": 0}


@dataclass(frozen=True)
class ResourceHealth:
    kind: str
    namespace: str  # "" for cluster-scoped objects
    name: str
    status: Status
    message: str

    @property
    def ready(self) -> bool:
        return self.status == "Ready"

    @property
    def detail(self) -> str:
        """The message without the leading object name (for places that already show the object)."""
        prefix = f"{describe(self.kind, self.namespace, self.name)}: "
        return self.message[len(prefix) :] if self.message.startswith(prefix) else self.message

    @property
    def severity(self) -> int:
        return SEVERITY[self.status]


def describe(kind: str, namespace: str, name: str) -> str:
    """``Deployment default/web``, or ``ClusterRole reader`` for cluster-scoped objects."""
    kind = kind or "object"
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def missing(kind: str, namespace: str, name: str) -> ResourceHealth:
    """The health of an object the release declares but the cluster does not have."""
    return ResourceHealth(
        kind, namespace, name, "InProgress", f"{describe(kind, namespace, name)}: not found"
    )


def not_served(api_version: str, kind: str, namespace: str, name: str) -> ResourceHealth:
    """An object whose kind the API server no longer serves (its CustomResourceDefinition was removed)."""
    return ResourceHealth(
        kind,
        namespace,
        name,
        "Failed",
        f"{describe(kind, namespace, name)}: the API server does not serve {api_version} {kind} "
        "(was its CustomResourceDefinition removed?)",
    )


def within_autoscaler(
    workload: ResourceHealth, workload_obj: Mapping[str, Any] | None, hpa: Mapping[str, Any] | None
) -> ResourceHealth:
    """A Ready workload whose replicas are outside its HPA's bounds is not Ready yet: the HPA has still
    to scale it (e.g. a chart that stopped setting ``replicas`` when it handed them to an HPA)."""
    if not workload.ready or workload_obj is None or hpa is None:
        return workload
    spec, hpa_spec = workload_obj.get("spec"), hpa.get("spec")
    if not isinstance(spec, Mapping) or not isinstance(hpa_spec, Mapping):
        return workload
    replicas, low, high = spec.get("replicas", 1), hpa_spec.get("minReplicas", 1), hpa_spec.get("maxReplicas")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (replicas, low)):
        return workload
    if replicas < low or (isinstance(high, int) and replicas > high):
        bounds = f"{low}..{high}" if isinstance(high, int) else f"at least {low}"
        return ResourceHealth(
            workload.kind,
            workload.namespace,
            workload.name,
            "InProgress",
            f"{describe(workload.kind, workload.namespace, workload.name)}: {replicas} replicas, outside "
            f"its HorizontalPodAutoscaler's {bounds}; waiting for the autoscaler",
        )
    return workload


def assess(
    obj: Mapping[str, Any] | None, *, kind: str = "", namespace: str = "", name: str = ""
) -> ResourceHealth:
    """The health of a live object; ``None`` (absent) is InProgress "not found" for the given identity."""
    if obj is None:
        return missing(kind, namespace, name)
    metadata = as_mapping(obj.get("metadata"))
    kind = str(obj.get("kind") or kind)
    namespace = str(metadata.get("namespace") or namespace)
    name = str(metadata.get("name") or name)

    def verdict(status: Status, detail: str) -> ResourceHealth:
        return ResourceHealth(kind, namespace, name, status, f"{describe(kind, namespace, name)}: {detail}")

    if not kind:
        return verdict("Unknown", "the object has no kind")
    if metadata.get("deletionTimestamp"):
        return verdict("InProgress", "being deleted")
    try:
        status = as_mapping(obj.get("status"))
        stale = stale_generation(metadata, status)
        if stale:
            return verdict("InProgress", stale)
        if kind == "HorizontalPodAutoscaler" and "conditions" not in status:
            status = v1_hpa_conditions(metadata, status)
        rule = RULES.get(kind, generic_rule)
        result_status, detail = rule(as_mapping(obj.get("spec")), status)
    except Malformed as error:
        return verdict("Unknown", f"cannot read status: {error}")
    return verdict(result_status, detail)
