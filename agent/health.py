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
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

Status = Literal["Ready", "InProgress", "Failed", "Unknown"]

# Worst first: the order in which non-ready resources are shown.
SEVERITY: Final[Mapping[str, int]] = {"Failed": 3, "Unknown": 2, "InProgress": 1, "Ready": 0}

# Container waiting reasons that do not resolve by waiting.
_FATAL_WAITING_REASONS: Final = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


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
    metadata = _mapping(obj.get("metadata"))
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
        status = _mapping(obj.get("status"))
        stale = _stale_generation(metadata, status)
        if stale:
            return verdict("InProgress", stale)
        if kind == "HorizontalPodAutoscaler" and "conditions" not in status:
            status = _v1_hpa_conditions(metadata, status)
        rule = _RULES.get(kind, _generic)
        result_status, detail = rule(_mapping(obj.get("spec")), status)
    except _Malformed as error:
        return verdict("Unknown", f"cannot read status: {error}")
    return verdict(result_status, detail)


# ------------------------------------------------------------------------------------------ helpers


class _Malformed(ValueError):
    """A status field has a type the API would never send: the object's health is Unknown."""


def _mapping(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _Malformed(f"expected an object, got {type(value).__name__}")
    return value


def _int(container: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = container.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{key} is {value!r}, not an integer")
    return value


def _conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = status.get("conditions") or []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise _Malformed("conditions is not a list")
    return {str(c.get("type")): c for c in raw if isinstance(c, Mapping)}


def _is_true(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def _is_false(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "False"


def _explain(condition: Mapping[str, Any]) -> str:
    reason = str(condition.get("reason") or condition.get("type") or "")
    text = str(condition.get("message") or "").strip()
    return f"{reason}: {text}" if text and reason else text or reason


def _v1_hpa_conditions(metadata: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
    """autoscaling/v1 carries an HPA's conditions as JSON in an annotation."""
    raw = _mapping(metadata.get("annotations")).get("autoscaling.alpha.kubernetes.io/conditions")
    if not isinstance(raw, str):
        return status
    try:
        conditions = json.loads(raw)
    except ValueError:
        raise _Malformed("the autoscaling conditions annotation is not JSON") from None
    return {**status, "conditions": conditions}


def _stale_generation(metadata: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    if "observedGeneration" not in status or "generation" not in metadata:
        return None
    generation = _int(metadata, "generation")
    observed = _int(status, "observedGeneration")
    if observed < generation:
        return f"generation {generation} not yet observed by its controller (observed {observed})"
    return None


_Verdict = tuple[Status, str]


def _replicas_wanted(spec: Mapping[str, Any]) -> int:
    return _int(spec, "replicas", 1)


# -------------------------------------------------------------------------------------- kind rules


def _deployment(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    conditions = _conditions(status)
    progressing = conditions.get("Progressing")
    if _is_false(progressing) and progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "Failed", f"rollout stuck ({_explain(progressing)})"
    failure = conditions.get("ReplicaFailure")
    if _is_true(failure) and failure:
        return "Failed", f"cannot create pods ({_explain(failure)})"
    wanted = _replicas_wanted(spec)
    updated = _int(status, "updatedReplicas")
    total = _int(status, "replicas")
    available = _int(status, "availableReplicas")
    ready = _int(status, "readyReplicas")
    terminating = _int(status, "terminatingReplicas")
    if updated < wanted:
        return "InProgress", f"{updated} of {wanted} replicas updated"
    if total > updated:
        return "InProgress", f"{total - updated} old replicas pending termination"
    if available < wanted:
        return "InProgress", f"{available} of {wanted} replicas available"
    if ready < wanted:
        return "InProgress", f"{ready} of {wanted} replicas ready"
    if terminating > 0:
        return "InProgress", f"{terminating} replicas terminating"
    if _is_true(progressing) and progressing and progressing.get("reason") in _ROLLOUT_UNDER_WAY:
        # The counters can look complete for a moment before the controller has finished the rollout:
        # it says so by moving Progressing to NewReplicaSetAvailable (as `kubectl rollout status` waits).
        return "InProgress", f"rollout in progress ({_explain(progressing)})"
    return "Ready", f"{available} of {wanted} replicas available"


# Progressing reasons of a Deployment whose rollout has not completed yet.
_ROLLOUT_UNDER_WAY: Final = frozenset({"NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"})


def _hpa(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    """autoscaling/v2: by its conditions.  An HPA that cannot read metrics or its target is not Ready."""
    conditions = _conditions(status)
    able, active = conditions.get("AbleToScale"), conditions.get("ScalingActive")
    if _is_false(able) and able:
        reason = str(able.get("reason") or "")
        verdict: Status = "Failed" if reason in ("FailedGetScale", "FailedUpdateScale") else "InProgress"
        return verdict, f"cannot scale ({_explain(able)})"
    if _is_false(active) and active:
        if active.get("reason") == "ScalingDisabled":
            return "Ready", f"scaling disabled ({_explain(active)})"
        return "InProgress", f"scaling not active ({_explain(active)})"
    if active is None or able is None:
        return "InProgress", "not yet assessed by the autoscaler (no AbleToScale/ScalingActive conditions)"
    current, desired = _int(status, "currentReplicas"), _int(status, "desiredReplicas")
    if current != desired:
        return "InProgress", f"scaling from {current} to {desired} replicas"
    return "Ready", f"{current} replicas, scaling active"


def _replicaset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    failure = _conditions(status).get("ReplicaFailure")
    if _is_true(failure) and failure:
        return "Failed", f"cannot create pods ({_explain(failure)})"
    wanted = _replicas_wanted(spec)
    available = _int(status, "availableReplicas")
    ready = _int(status, "readyReplicas")
    if ready < wanted:
        return "InProgress", f"{ready} of {wanted} replicas ready"
    if available < wanted:
        return "InProgress", f"{available} of {wanted} replicas available"
    return "Ready", f"{available} of {wanted} replicas available"


def _statefulset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    wanted = _replicas_wanted(spec)
    ready = _int(status, "readyReplicas")
    current = _int(status, "currentReplicas")
    updated = _int(status, "updatedReplicas")
    strategy = _mapping(spec.get("updateStrategy"))
    if ready < wanted:
        return "InProgress", f"{ready} of {wanted} replicas ready"
    if strategy.get("type") == "OnDelete":
        return "Ready", f"{ready} of {wanted} replicas ready (OnDelete updates)"
    partition = _int(_mapping(strategy.get("rollingUpdate")), "partition")
    if partition > 0:
        if updated < wanted - partition:
            return (
                "InProgress",
                f"{updated} of {wanted - partition} replicas above partition {partition} updated",
            )
        return "Ready", f"{ready} of {wanted} replicas ready (partitioned at {partition})"
    if updated < wanted:
        return "InProgress", f"{updated} of {wanted} replicas updated"
    if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
        return (
            "InProgress",
            f"rolling out revision {status.get('updateRevision')} ({current} of {wanted} current)",
        )
    return "Ready", f"{ready} of {wanted} replicas ready"


def _daemonset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    desired = _int(status, "desiredNumberScheduled")
    scheduled = _int(status, "currentNumberScheduled")
    updated = _int(status, "updatedNumberScheduled")
    available = _int(status, "numberAvailable")
    ready = _int(status, "numberReady")
    if "desiredNumberScheduled" not in status:
        return "InProgress", "not yet scheduled by its controller"
    if scheduled < desired:
        return "InProgress", f"{scheduled} of {desired} nodes scheduled"
    if updated < desired:
        return "InProgress", f"{updated} of {desired} pods updated"
    if ready < desired:
        return "InProgress", f"{ready} of {desired} pods ready"
    if available < desired:
        return "InProgress", f"{available} of {desired} pods available"
    return "Ready", f"{available} of {desired} pods available"


def _job(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    conditions = _conditions(status)
    failed = conditions.get("Failed")
    if _is_true(failed) and failed:
        return "Failed", f"job failed ({_explain(failed)})"
    if _is_true(conditions.get("Complete")):
        return "Ready", f"completed ({_int(status, 'succeeded')} succeeded)"
    if _is_true(conditions.get("Suspended")):
        return "InProgress", "suspended"
    active, succeeded, failures = _int(status, "active"), _int(status, "succeeded"), _int(status, "failed")
    return "InProgress", f"running ({active} active, {succeeded} succeeded, {failures} failed)"


def _pod(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    phase = str(status.get("phase") or "")
    if phase == "Succeeded":
        return "Ready", "completed"
    if phase == "Failed":
        reason = str(status.get("reason") or status.get("message") or "the pod failed")
        return "Failed", f"failed ({reason})"
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = _mapping(_mapping(_mapping(container).get("state")).get("waiting"))
        reason = str(waiting.get("reason") or "")
        if reason in _FATAL_WAITING_REASONS:
            text = str(waiting.get("message") or "").strip()
            detail = f": {text}" if text else ""
            return "Failed", f"container {container.get('name')} is {reason}{detail}"
    conditions = _conditions(status)
    scheduled = conditions.get("PodScheduled")
    if _is_false(scheduled) and scheduled:
        return "InProgress", f"not scheduled ({_explain(scheduled)})"
    ready = conditions.get("Ready")
    if _is_true(ready):
        return "Ready", "running and ready"
    if phase == "Running":
        return "InProgress", "running, not ready" + (f" ({_explain(ready)})" if ready else "")
    return "InProgress", f"phase {phase or 'unknown'}"


def _pvc(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    phase = str(status.get("phase") or "Pending")
    if phase == "Bound":
        return "Ready", "bound"
    if phase == "Lost":
        return "Failed", "its volume is lost"
    return "InProgress", f"{phase.lower()}, not bound"


def _service(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    kind = str(spec.get("type") or "ClusterIP")
    if kind != "LoadBalancer":
        return "Ready", f"{kind} service"
    ingress = _mapping(status.get("loadBalancer")).get("ingress") or []
    if not ingress:
        return "InProgress", "waiting for a load balancer address"
    first = _mapping(ingress[0])
    return "Ready", f"load balancer at {first.get('ip') or first.get('hostname') or 'an address'}"


def _generic(spec: Mapping[str, Any], status: Mapping[str, Any]) -> _Verdict:
    """Objects kstatus knows nothing special about: read standard conditions, else Ready."""
    conditions = _conditions(status)
    stalled = conditions.get("Stalled")
    if _is_true(stalled) and stalled:
        return "Failed", f"stalled ({_explain(stalled)})"
    reconciling = conditions.get("Reconciling")
    if _is_true(reconciling) and reconciling:
        return "InProgress", f"reconciling ({_explain(reconciling)})"
    ready = conditions.get("Ready")
    if ready is not None:
        if _is_true(ready):
            return "Ready", "ready"
        return "InProgress", f"not ready ({_explain(ready)})"
    return "Ready", "exists"


_RULES: Final[Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], _Verdict]]] = {
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "StatefulSet": _statefulset,
    "DaemonSet": _daemonset,
    "Job": _job,
    "Pod": _pod,
    "PersistentVolumeClaim": _pvc,
    "Service": _service,
    "HorizontalPodAutoscaler": _hpa,
}
