"""The per-kind health rules of :mod:`agent.health`: from a live object's spec and status to a
verdict (a status and a detail), kstatus-style; :data:`RULES` maps a kind to its rule and
:func:`generic_rule` reads the standard conditions of every other kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

from agent.health_fields import as_mapping, conditions_by_type, explain, int_field, is_false, is_true

Status = Literal["Ready", "InProgress", "Failed", "Unknown"]

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


Verdict = tuple[Status, str]


def _replicas_wanted(spec: Mapping[str, Any]) -> int:
    return int_field(spec, "replicas", 1)


# -------------------------------------------------------------------------------------- kind rules


def _deployment(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    conditions = conditions_by_type(status)
    progressing = conditions.get("Progressing")
    if is_false(progressing) and progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "Failed", f"rollout stuck ({explain(progressing)})"
    failure = conditions.get("ReplicaFailure")
    if is_true(failure) and failure:
        return "Failed", f"cannot create pods ({explain(failure)})"
    wanted = _replicas_wanted(spec)
    updated = int_field(status, "updatedReplicas")
    total = int_field(status, "replicas")
    available = int_field(status, "availableReplicas")
    ready = int_field(status, "readyReplicas")
    terminating = int_field(status, "terminatingReplicas")
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
    if is_true(progressing) and progressing and progressing.get("reason") in _ROLLOUT_UNDER_WAY:
        # The counters can look complete for a moment before the controller has finished the rollout:
        # it says so by moving Progressing to NewReplicaSetAvailable (as `kubectl rollout status` waits).
        return "InProgress", f"rollout in progress ({explain(progressing)})"
    return "Ready", f"{available} of {wanted} replicas available"


# Progressing reasons of a Deployment whose rollout has not completed yet.
_ROLLOUT_UNDER_WAY: Final = frozenset({"NewReplicaSetCreated", "FoundNewReplicaSet", "ReplicaSetUpdated"})


def _hpa(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    """autoscaling/v2: by its conditions.  An HPA that cannot read metrics or its target is not Ready."""
    conditions = conditions_by_type(status)
    able, active = conditions.get("AbleToScale"), conditions.get("ScalingActive")
    if is_false(able) and able:
        reason = str(able.get("reason") or "")
        verdict: Status = "Failed" if reason in ("FailedGetScale", "FailedUpdateScale") else "InProgress"
        return verdict, f"cannot scale ({explain(able)})"
    if is_false(active) and active:
        if active.get("reason") == "ScalingDisabled":
            return "Ready", f"scaling disabled ({explain(active)})"
        return "InProgress", f"scaling not active ({explain(active)})"
    if active is None or able is None:
        return "InProgress", "not yet assessed by the autoscaler (no AbleToScale/ScalingActive conditions)"
    current, desired = int_field(status, "currentReplicas"), int_field(status, "desiredReplicas")
    if current != desired:
        return "InProgress", f"scaling from {current} to {desired} replicas"
    return "Ready", f"{current} replicas, scaling active"


def _replicaset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    failure = conditions_by_type(status).get("ReplicaFailure")
    if is_true(failure) and failure:
        return "Failed", f"cannot create pods ({explain(failure)})"
    wanted = _replicas_wanted(spec)
    available = int_field(status, "availableReplicas")
    ready = int_field(status, "readyReplicas")
    if ready < wanted:
        return "InProgress", f"{ready} of {wanted} replicas ready"
    if available < wanted:
        return "InProgress", f"{available} of {wanted} replicas available"
    return "Ready", f"{available} of {wanted} replicas available"


def _statefulset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    wanted = _replicas_wanted(spec)
    ready = int_field(status, "readyReplicas")
    current = int_field(status, "currentReplicas")
    updated = int_field(status, "updatedReplicas")
    strategy = as_mapping(spec.get("updateStrategy"))
    if ready < wanted:
        return "InProgress", f"{ready} of {wanted} replicas ready"
    if strategy.get("type") == "OnDelete":
        return "Ready", f"{ready} of {wanted} replicas ready (OnDelete updates)"
    partition = int_field(as_mapping(strategy.get("rollingUpdate")), "partition")
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


def _daemonset(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    desired = int_field(status, "desiredNumberScheduled")
    scheduled = int_field(status, "currentNumberScheduled")
    updated = int_field(status, "updatedNumberScheduled")
    available = int_field(status, "numberAvailable")
    ready = int_field(status, "numberReady")
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


def _job(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    conditions = conditions_by_type(status)
    failed = conditions.get("Failed")
    if is_true(failed) and failed:
        return "Failed", f"job failed ({explain(failed)})"
    if is_true(conditions.get("Complete")):
        return "Ready", f"completed ({int_field(status, 'succeeded')} succeeded)"
    if is_true(conditions.get("Suspended")):
        return "InProgress", "suspended"
    active, succeeded, failures = (
        int_field(status, "active"),
        int_field(status, "succeeded"),
        int_field(status, "failed"),
    )
    return "InProgress", f"running ({active} active, {succeeded} succeeded, {failures} failed)"


def _pod(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    phase = str(status.get("phase") or "")
    if phase == "Succeeded":
        return "Ready", "completed"
    if phase == "Failed":
        reason = str(status.get("reason") or status.get("message") or "the pod failed")
        return "Failed", f"failed ({reason})"
    for container in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = as_mapping(as_mapping(as_mapping(container).get("state")).get("waiting"))
        reason = str(waiting.get("reason") or "")
        if reason in _FATAL_WAITING_REASONS:
            text = str(waiting.get("message") or "").strip()
            detail = f": {text}" if text else ""
            return "Failed", f"container {container.get('name')} is {reason}{detail}"
    conditions = conditions_by_type(status)
    scheduled = conditions.get("PodScheduled")
    if is_false(scheduled) and scheduled:
        return "InProgress", f"not scheduled ({explain(scheduled)})"
    ready = conditions.get("Ready")
    if is_true(ready):
        return "Ready", "running and ready"
    if phase == "Running":
        return "InProgress", "running, not ready" + (f" ({explain(ready)})" if ready else "")
    return "InProgress", f"phase {phase or 'unknown'}"


def _pvc(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    phase = str(status.get("phase") or "Pending")
    if phase == "Bound":
        return "Ready", "bound"
    if phase == "Lost":
        return "Failed", "its volume is lost"
    return "InProgress", f"{phase.lower()}, not bound"


def _service(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    kind = str(spec.get("type") or "ClusterIP")
    if kind != "LoadBalancer":
        return "Ready", f"{kind} service"
    ingress = as_mapping(status.get("loadBalancer")).get("ingress") or []
    if not ingress:
        return "InProgress", "waiting for a load balancer address"
    first = as_mapping(ingress[0])
    return "Ready", f"load balancer at {first.get('ip') or first.get('hostname') or 'an address'}"


def generic_rule(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Verdict:
    """Objects kstatus knows nothing special about: read standard conditions, else Ready."""
    conditions = conditions_by_type(status)
    stalled = conditions.get("Stalled")
    if is_true(stalled) and stalled:
        return "Failed", f"stalled ({explain(stalled)})"
    reconciling = conditions.get("Reconciling")
    if is_true(reconciling) and reconciling:
        return "InProgress", f"reconciling ({explain(reconciling)})"
    ready = conditions.get("Ready")
    if ready is not None:
        if is_true(ready):
            return "Ready", "ready"
        return "InProgress", f"not ready ({explain(ready)})"
    return "Ready", "exists"


RULES: Final[Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Verdict]]] = {
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
