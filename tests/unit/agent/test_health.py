"""The health rules: one live object in, Ready / InProgress / Failed / Unknown and a concrete message out."""

from __future__ import annotations

from typing import Any

import pytest

from agent.health import ResourceHealth, assess, describe, missing


def obj(
    kind: str, spec: Any = None, status: Any = None, *, namespace: str = "default", **meta: Any
) -> dict[str, Any]:
    o: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "web", **meta}}
    if namespace:
        o["metadata"]["namespace"] = namespace
    if spec is not None:
        o["spec"] = spec
    if status is not None:
        o["status"] = status
    return o


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def deploy_status(updated: int, total: int, available: int, ready: int, *conditions: Any) -> dict[str, Any]:
    return {
        "updatedReplicas": updated,
        "replicas": total,
        "availableReplicas": available,
        "readyReplicas": ready,
        "conditions": list(conditions),
    }


CASES = [
    # --- Deployment
    pytest.param(
        obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 2, 2)),
        "Ready",
        "Deployment default/web: 2 of 2 replicas available",
        id="a Deployment with all replicas updated and available is Ready",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 1, 1)),
        "InProgress",
        "Deployment default/web: 1 of 2 replicas available",
        id="a Deployment with one of two replicas available is InProgress and says so",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 3}, deploy_status(1, 3, 3, 3)),
        "InProgress",
        "Deployment default/web: 1 of 3 replicas updated",
        id="a Deployment mid-rollout counts its updated replicas",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 2}, deploy_status(2, 3, 2, 2)),
        "InProgress",
        "Deployment default/web: 1 old replicas pending termination",
        id="a Deployment with old pods still terminating is InProgress",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 2, 1)),
        "InProgress",
        "Deployment default/web: 1 of 2 replicas ready",
        id="a Deployment with an available but unready replica is InProgress",
    ),
    pytest.param(
        obj("Deployment", {}, deploy_status(1, 1, 1, 1)),
        "Ready",
        "Deployment default/web: 1 of 1 replicas available",
        id="a Deployment without spec.replicas wants the default of one",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 0}, {}),
        "Ready",
        "Deployment default/web: 0 of 0 replicas available",
        id="a Deployment scaled to zero is Ready with an empty status",
    ),
    pytest.param(
        obj(
            "Deployment",
            {"replicas": 2},
            deploy_status(
                1,
                2,
                1,
                1,
                cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-1" has timed out'),
            ),
        ),
        "Failed",
        'Deployment default/web: rollout stuck (ProgressDeadlineExceeded: ReplicaSet "web-1" has timed out)',
        id="a Deployment past its progress deadline has Failed",
    ),
    pytest.param(
        obj(
            "Deployment",
            {"replicas": 2},
            deploy_status(0, 0, 0, 0, cond("ReplicaFailure", "True", "FailedCreate", "exceeded quota")),
        ),
        "Failed",
        "Deployment default/web: cannot create pods (FailedCreate: exceeded quota)",
        id="a Deployment whose pods cannot be created has Failed",
    ),
    pytest.param(
        obj(
            "Deployment",
            {"replicas": 2},
            {**deploy_status(2, 2, 2, 2), "observedGeneration": 3},
            generation=4,
        ),
        "InProgress",
        "Deployment default/web: generation 4 not yet observed by its controller (observed 3)",
        id="a Deployment whose latest generation is not observed yet is InProgress whatever its counters say",
    ),
    pytest.param(
        obj(
            "Deployment",
            {"replicas": 2},
            {**deploy_status(2, 2, 2, 2), "observedGeneration": 4},
            generation=4,
        ),
        "Ready",
        "Deployment default/web: 2 of 2 replicas available",
        id="a Deployment whose latest generation is observed is judged by its counters",
    ),
    pytest.param(
        obj("Deployment", {"replicas": 2}, {"availableReplicas": "two"}),
        "Unknown",
        "Deployment default/web: cannot read status: availableReplicas is 'two', not an integer",
        id="a Deployment with a malformed counter is Unknown",
    ),
    # --- ReplicaSet
    pytest.param(
        obj("ReplicaSet", {"replicas": 3}, {"readyReplicas": 3, "availableReplicas": 3}),
        "Ready",
        "ReplicaSet default/web: 3 of 3 replicas available",
        id="a ReplicaSet with all replicas available is Ready",
    ),
    pytest.param(
        obj("ReplicaSet", {"replicas": 3}, {"readyReplicas": 1, "availableReplicas": 1}),
        "InProgress",
        "ReplicaSet default/web: 1 of 3 replicas ready",
        id="a ReplicaSet short of ready replicas is InProgress",
    ),
    pytest.param(
        obj(
            "ReplicaSet",
            {"replicas": 1},
            {"conditions": [cond("ReplicaFailure", "True", "FailedCreate", "quota")]},
        ),
        "Failed",
        "ReplicaSet default/web: cannot create pods (FailedCreate: quota)",
        id="a ReplicaSet with a ReplicaFailure condition has Failed",
    ),
    # --- StatefulSet
    pytest.param(
        obj(
            "StatefulSet",
            {"replicas": 2},
            {
                "readyReplicas": 2,
                "currentReplicas": 2,
                "updatedReplicas": 2,
                "currentRevision": "a",
                "updateRevision": "a",
            },
        ),
        "Ready",
        "StatefulSet default/web: 2 of 2 replicas ready",
        id="a StatefulSet with every replica ready on the current revision is Ready",
    ),
    pytest.param(
        obj("StatefulSet", {"replicas": 2}, {"readyReplicas": 1}),
        "InProgress",
        "StatefulSet default/web: 1 of 2 replicas ready",
        id="a StatefulSet short of ready replicas is InProgress",
    ),
    pytest.param(
        obj(
            "StatefulSet",
            {"replicas": 2},
            {
                "readyReplicas": 2,
                "currentReplicas": 1,
                "updatedReplicas": 2,
                "currentRevision": "a",
                "updateRevision": "b",
            },
        ),
        "InProgress",
        "StatefulSet default/web: rolling out revision b (1 of 2 current)",
        id="a StatefulSet still switching revisions is InProgress",
    ),
    pytest.param(
        obj("StatefulSet", {"replicas": 2}, {"readyReplicas": 2, "updatedReplicas": 1}),
        "InProgress",
        "StatefulSet default/web: 1 of 2 replicas updated",
        id="a StatefulSet with a replica not yet updated is InProgress",
    ),
    pytest.param(
        obj(
            "StatefulSet",
            {"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}},
            {"readyReplicas": 4, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "b"},
        ),
        "Ready",
        "StatefulSet default/web: 4 of 4 replicas ready (partitioned at 2)",
        id="a partitioned StatefulSet is Ready once the replicas above the partition are updated",
    ),
    pytest.param(
        obj(
            "StatefulSet",
            {"replicas": 2, "updateStrategy": {"type": "OnDelete"}},
            {"readyReplicas": 2, "updatedReplicas": 0, "currentRevision": "a", "updateRevision": "b"},
        ),
        "Ready",
        "StatefulSet default/web: 2 of 2 replicas ready (OnDelete updates)",
        id="an OnDelete StatefulSet is Ready when its replicas are ready",
    ),
    # --- DaemonSet
    pytest.param(
        obj(
            "DaemonSet",
            {},
            {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 3,
                "numberReady": 3,
            },
        ),
        "Ready",
        "DaemonSet default/web: 3 of 3 pods available",
        id="a DaemonSet available on every node is Ready",
    ),
    pytest.param(
        obj(
            "DaemonSet",
            {},
            {
                "desiredNumberScheduled": 3,
                "currentNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 2,
                "numberReady": 2,
            },
        ),
        "InProgress",
        "DaemonSet default/web: 2 of 3 pods ready",
        id="a DaemonSet with a pod not ready is InProgress",
    ),
    pytest.param(
        obj(
            "DaemonSet",
            {},
            {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "updatedNumberScheduled": 1},
        ),
        "InProgress",
        "DaemonSet default/web: 1 of 3 pods updated",
        id="a DaemonSet mid-rollout is InProgress",
    ),
    pytest.param(
        obj("DaemonSet", {}, {}),
        "InProgress",
        "DaemonSet default/web: not yet scheduled by its controller",
        id="a DaemonSet its controller has not seen yet is InProgress",
    ),
    # --- Job
    pytest.param(
        obj("Job", {}, {"succeeded": 1, "conditions": [cond("Complete", "True")]}),
        "Ready",
        "Job default/web: completed (1 succeeded)",
        id="a completed Job is Ready",
    ),
    pytest.param(
        obj(
            "Job",
            {},
            {"failed": 6, "conditions": [cond("Failed", "True", "BackoffLimitExceeded", "too many")]},
        ),
        "Failed",
        "Job default/web: job failed (BackoffLimitExceeded: too many)",
        id="a Job with a Failed condition has Failed",
    ),
    pytest.param(
        obj("Job", {}, {"active": 1, "failed": 1}),
        "InProgress",
        "Job default/web: running (1 active, 0 succeeded, 1 failed)",
        id="a running Job is InProgress with its counters",
    ),
    # --- Pod
    pytest.param(
        obj("Pod", {}, {"phase": "Running", "conditions": [cond("Ready", "True")]}),
        "Ready",
        "Pod default/web: running and ready",
        id="a running pod with the Ready condition is Ready",
    ),
    pytest.param(
        obj(
            "Pod",
            {},
            {"phase": "Running", "conditions": [cond("Ready", "False", "ContainersNotReady", "web")]},
        ),
        "InProgress",
        "Pod default/web: running, not ready (ContainersNotReady: web)",
        id="a running pod that is not ready is InProgress",
    ),
    pytest.param(
        obj("Pod", {}, {"phase": "Succeeded"}),
        "Ready",
        "Pod default/web: completed",
        id="a pod that ran to completion is Ready",
    ),
    pytest.param(
        obj("Pod", {}, {"phase": "Failed", "reason": "Evicted"}),
        "Failed",
        "Pod default/web: failed (Evicted)",
        id="a failed pod has Failed",
    ),
    pytest.param(
        obj(
            "Pod",
            {},
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "app",
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m"}},
                    }
                ],
            },
        ),
        "Failed",
        "Pod default/web: container app is CrashLoopBackOff: back-off 5m",
        id="a crash-looping pod has Failed",
    ),
    pytest.param(
        obj(
            "Pod",
            {},
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
            },
        ),
        "Failed",
        "Pod default/web: container app is ImagePullBackOff",
        id="a pod whose image cannot be pulled has Failed",
    ),
    pytest.param(
        obj(
            "Pod",
            {},
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ContainerCreating"}}}],
            },
        ),
        "InProgress",
        "Pod default/web: phase Pending",
        id="a pod whose container is being created is InProgress",
    ),
    pytest.param(
        obj(
            "Pod",
            {},
            {
                "phase": "Pending",
                "conditions": [cond("PodScheduled", "False", "Unschedulable", "0/1 nodes available")],
            },
        ),
        "InProgress",
        "Pod default/web: not scheduled (Unschedulable: 0/1 nodes available)",
        id="an unschedulable pod is InProgress with the scheduler's reason",
    ),
    # --- PVC
    pytest.param(
        obj("PersistentVolumeClaim", {}, {"phase": "Bound"}),
        "Ready",
        "PersistentVolumeClaim default/web: bound",
        id="a bound PVC is Ready",
    ),
    pytest.param(
        obj("PersistentVolumeClaim", {}, {"phase": "Pending"}),
        "InProgress",
        "PersistentVolumeClaim default/web: pending, not bound",
        id="a pending PVC is InProgress",
    ),
    pytest.param(
        obj("PersistentVolumeClaim", {}, {"phase": "Lost"}),
        "Failed",
        "PersistentVolumeClaim default/web: its volume is lost",
        id="a PVC whose volume is lost has Failed",
    ),
    # --- Service
    pytest.param(
        obj("Service", {"type": "ClusterIP"}, {}),
        "Ready",
        "Service default/web: ClusterIP service",
        id="a ClusterIP Service is Ready at once",
    ),
    pytest.param(
        obj("Service", {"type": "LoadBalancer"}, {"loadBalancer": {}}),
        "InProgress",
        "Service default/web: waiting for a load balancer address",
        id="a LoadBalancer Service without ingress is InProgress",
    ),
    pytest.param(
        obj("Service", {"type": "LoadBalancer"}, {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}),
        "Ready",
        "Service default/web: load balancer at 10.0.0.9",
        id="a LoadBalancer Service with an ingress address is Ready",
    ),
    # --- generic conditions and status-less objects
    pytest.param(
        obj("Certificate", {}, {"conditions": [cond("Ready", "True")]}),
        "Ready",
        "Certificate default/web: ready",
        id="a custom object with Ready=True is Ready",
    ),
    pytest.param(
        obj("Certificate", {}, {"conditions": [cond("Ready", "False", "Issuing", "waiting for CA")]}),
        "InProgress",
        "Certificate default/web: not ready (Issuing: waiting for CA)",
        id="a custom object with Ready=False is InProgress",
    ),
    pytest.param(
        obj("Kustomization", {}, {"conditions": [cond("Stalled", "True", "BuildFailed", "bad yaml")]}),
        "Failed",
        "Kustomization default/web: stalled (BuildFailed: bad yaml)",
        id="a custom object with Stalled=True has Failed",
    ),
    pytest.param(
        obj("Kustomization", {}, {"conditions": [cond("Reconciling", "True", "Progressing", "applying")]}),
        "InProgress",
        "Kustomization default/web: reconciling (Progressing: applying)",
        id="a custom object with Reconciling=True is InProgress",
    ),
    pytest.param(
        obj("ConfigMap"),
        "Ready",
        "ConfigMap default/web: exists",
        id="a ConfigMap is Ready once it exists",
    ),
    pytest.param(
        obj("ClusterRole", namespace=""),
        "Ready",
        "ClusterRole web: exists",
        id="a cluster-scoped RBAC object is Ready and named without a namespace",
    ),
    pytest.param(
        obj("ConfigMap", deletionTimestamp="2026-01-01T00:00:00Z"),
        "InProgress",
        "ConfigMap default/web: being deleted",
        id="an object being deleted is InProgress",
    ),
    pytest.param(
        obj("Deployment", {}, "not a mapping"),
        "Unknown",
        "Deployment default/web: cannot read status: expected an object, got str",
        id="an object whose status is not a mapping is Unknown",
    ),
    pytest.param(
        {"metadata": {"name": "web", "namespace": "default"}},
        "Unknown",
        "object default/web: the object has no kind",
        id="an object without a kind is Unknown",
    ),
]


@pytest.mark.parametrize(("live", "status", "message"), CASES)
def test_assess(live: dict[str, Any], status: str, message: str) -> None:
    health = assess(live)
    assert (health.status, health.message) == (status, message)
    assert health.ready is (status == "Ready")


def test_assess_keeps_the_identity_of_the_object() -> None:
    health = assess(obj("Deployment", {"replicas": 1}, deploy_status(1, 1, 1, 1), namespace="shop"))
    assert (health.kind, health.namespace, health.name) == ("Deployment", "shop", "web")


def test_a_missing_object_is_in_progress_and_not_found() -> None:
    assert missing("ConfigMap", "default", "cfg") == ResourceHealth(
        "ConfigMap", "default", "cfg", "InProgress", "ConfigMap default/cfg: not found"
    )
    assert assess(None, kind="ConfigMap", namespace="default", name="cfg") == missing(
        "ConfigMap", "default", "cfg"
    )


def test_failed_is_worse_than_unknown_is_worse_than_in_progress_is_worse_than_ready() -> None:
    def make(status: Any) -> ResourceHealth:
        return ResourceHealth("ConfigMap", "", "x", status, "")

    ordered = sorted(
        [make("Ready"), make("Failed"), make("InProgress"), make("Unknown")], key=lambda h: -h.severity
    )
    assert [h.status for h in ordered] == ["Failed", "Unknown", "InProgress", "Ready"]


def test_describe_names_namespaced_and_cluster_scoped_objects() -> None:
    assert describe("Deployment", "default", "web") == "Deployment default/web"
    assert describe("Namespace", "", "shop") == "Namespace shop"


# --- autoscalers and rollouts (issue 10)


def hpa(
    *conditions: Any, current: int = 3, desired: int = 3, v1_annotation: str | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if v1_annotation is not None:
        meta["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": v1_annotation}
    status: dict[str, Any] = {"currentReplicas": current, "desiredReplicas": desired}
    if conditions:
        status["conditions"] = list(conditions)
    return obj("HorizontalPodAutoscaler", {"minReplicas": 2, "maxReplicas": 5}, status, **meta)


ABLE = cond("AbleToScale", "True", "ReadyForNewScale")
ACTIVE = cond("ScalingActive", "True", "ValidMetricFound")


@pytest.mark.parametrize(
    ("live", "status", "says"),
    [
        pytest.param(
            hpa(ABLE, ACTIVE), "Ready", "3 replicas, scaling active", id="an HPA with metrics is Ready"
        ),
        pytest.param(
            hpa(ABLE, cond("ScalingActive", "False", "FailedGetResourceMetric", "no metrics returned")),
            "InProgress",
            "scaling not active (FailedGetResourceMetric: no metrics returned)",
            id="an HPA without metrics is not Ready and says why",
        ),
        pytest.param(
            hpa(cond("AbleToScale", "False", "FailedGetScale", "deployments/scale not found"), ACTIVE),
            "Failed",
            "cannot scale (FailedGetScale: deployments/scale not found)",
            id="an HPA that cannot reach its target has Failed",
        ),
        pytest.param(hpa(), "InProgress", "not yet assessed", id="an HPA no controller has looked at yet"),
        pytest.param(
            hpa(ABLE, ACTIVE, current=1, desired=3), "InProgress", "scaling from 1 to 3", id="mid-scale"
        ),
        pytest.param(
            hpa(
                v1_annotation='[{"type":"AbleToScale","status":"True"},'
                '{"type":"ScalingActive","status":"False","reason":"FailedGetResourceMetric"}]'
            ),
            "InProgress",
            "FailedGetResourceMetric",
            id="autoscaling/v1 carries its conditions in an annotation",
        ),
    ],
)
def test_an_hpa_is_judged_by_its_conditions(live: dict[str, Any], status: str, says: str) -> None:
    health = assess(live)
    assert health.status == status
    assert says in health.message


def test_a_deployment_whose_rollout_has_not_completed_is_in_progress_even_when_counters_look_done() -> None:
    rolling = cond("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "web-2" is progressing.')
    done = cond(
        "Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "web-2" has successfully progressed.'
    )
    assert (
        assess(obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 2, 2, rolling))).status == "InProgress"
    )
    assert assess(obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 2, 2, done))).status == "Ready"
    terminating = {**deploy_status(2, 2, 2, 2, done), "terminatingReplicas": 1}
    assert assess(obj("Deployment", {"replicas": 2}, terminating)).message.endswith("1 replicas terminating")


def test_a_workload_outside_its_hpas_bounds_waits_for_the_autoscaler() -> None:
    from agent.health import within_autoscaler

    deployment = obj("Deployment", {"replicas": 1}, deploy_status(1, 1, 1, 1))
    ready = assess(deployment)
    assert ready.status == "Ready"
    below = within_autoscaler(ready, deployment, hpa(ABLE, ACTIVE))
    assert below.status == "InProgress"
    assert (
        below.detail == "1 replicas, outside its HorizontalPodAutoscaler's 2..5; waiting for the autoscaler"
    )
    inside = obj("Deployment", {"replicas": 3}, deploy_status(3, 3, 3, 3))
    assert within_autoscaler(assess(inside), inside, hpa(ABLE, ACTIVE)).status == "Ready"
    assert within_autoscaler(ready, deployment, None) is ready


def test_detail_is_the_message_without_the_object_name() -> None:
    health = assess(obj("Deployment", {"replicas": 2}, deploy_status(2, 2, 1, 1)))
    assert health.detail == "1 of 2 replicas available"
