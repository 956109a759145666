"""The drift rules: only fields the release sets count, and the message says what differs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.drift import Drift, compare

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app.kubernetes.io/name": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080}],
                        "env": [{"name": "REGION", "value": "eu"}, {"name": "TIER", "value": "edge"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                        "args": ["--serve", "--port=8080"],
                    }
                ],
                "hostNetwork": False,
                "tolerations": [{"key": "edge", "operator": "Exists"}],
            },
        },
    },
}


def live_deployment(**changes: Any) -> dict[str, Any]:
    """What the API server returns for DEPLOYMENT: defaults and bookkeeping added, then ``changes``."""
    live = copy.deepcopy(DEPLOYMENT)
    live["metadata"].update(
        {
            "uid": "1234",
            "resourceVersion": "99",
            "generation": 3,
            "managedFields": [{"manager": "helm"}],
            "annotations": {"deployment.kubernetes.io/revision": "3", "meta.helm.sh/release-name": "web"},
            "labels": {**live["metadata"]["labels"], "app.kubernetes.io/managed-by": "Helm"},
        }
    )
    spec = live["spec"]
    spec.update(
        {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10, "strategy": {"type": "RollingUpdate"}}
    )
    pod = spec["template"]["spec"]
    pod.update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler"})
    del pod["hostNetwork"]  # omitempty: false is dropped
    container = pod["containers"][0]
    container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    container["ports"][0]["protocol"] = "TCP"
    container["resources"]["limits"] = {"cpu": "0.5", "memory": "1024Mi"}
    live["status"] = {"replicas": 2, "readyReplicas": 1, "observedGeneration": 3}
    for path, value in changes.items():
        target: Any = live
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
    return live


DELETE = object()
C = "spec__template__spec__containers__0"
APP = "Deployment default/web: spec.template.spec.containers[app]."


NO_DRIFT = [
    pytest.param(
        live_deployment(), id="defaults, status, managedFields and helm annotations added by the cluster"
    ),
    pytest.param(
        live_deployment(
            **{
                "spec__template__spec__containers__0__env": [
                    {"name": "TIER", "value": "edge"},
                    {"name": "REGION", "value": "eu"},
                ]
            }
        ),
        id="named list items in another order",
    ),
    pytest.param(
        live_deployment(**{f"{C}__resources": {"limits": {"cpu": 0.5, "memory": "1073741824"}}}),
        id="quantities written differently but equal",
    ),
    pytest.param(
        live_deployment(**{f"{C}__ports": [{"name": "http", "containerPort": "8080", "protocol": "TCP"}]}),
        id="a port as a string where the release has an int",
    ),
    pytest.param(
        live_deployment(
            **{
                "spec__template__spec__containers": [
                    *live_deployment()["spec"]["template"]["spec"]["containers"],
                    {"name": "istio-proxy", "image": "proxy"},
                ]
            }
        ),
        id="a sidecar container injected by an admission webhook",
    ),
    pytest.param(
        live_deployment(
            **{"metadata__annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}}
        ),
        id="an annotation the release does not set",
    ),
]


@pytest.mark.parametrize("live", NO_DRIFT)
def test_no_drift_when_only_fields_the_release_does_not_own_differ(live: dict[str, Any]) -> None:
    assert compare(DEPLOYMENT, live) is None


DRIFT = [
    pytest.param(
        live_deployment(spec__replicas=5),
        "Deployment default/web: spec.replicas is 5, release says 2",
        id="replicas scaled by hand",
    ),
    pytest.param(
        live_deployment(**{f"{C}__image": "nginx:1.25"}),
        APP + "image is 'nginx:1.25', release says 'nginx:1.27'",
        id="a container image changed by hand, found by container name",
    ),
    pytest.param(
        live_deployment(
            **{f"{C}__env": [{"name": "REGION", "value": "us"}, {"name": "TIER", "value": "edge"}]}
        ),
        APP + "env[REGION].value is 'us', release says 'eu'",
        id="an env var edited by hand, found by its name",
    ),
    pytest.param(
        live_deployment(**{f"{C}__env": [{"name": "REGION", "value": "eu"}]}),
        APP + "env[TIER] is missing",
        id="an env var removed by hand",
    ),
    pytest.param(
        live_deployment(**{f"{C}__resources": {"limits": {"cpu": "250m", "memory": "1Gi"}}}),
        APP + "resources.limits.cpu is '250m', release says '500m'",
        id="a cpu limit lowered by hand",
    ),
    pytest.param(
        live_deployment(**{f"{C}__args": ["--serve"]}),
        APP + "args is ['--serve'], release says ['--serve', '--port=8080']",
        id="an argument list shortened by hand",
    ),
    pytest.param(
        live_deployment(**{"spec__template__spec__tolerations": []}),
        "Deployment default/web: spec.template.spec.tolerations is 0 items, release says 1 items",
        id="a list of unnamed objects emptied by hand",
    ),
    pytest.param(
        live_deployment(**{"spec__template__spec__hostNetwork": True}),
        "Deployment default/web: spec.template.spec.hostNetwork is True, release says False",
        id="a false the release sets turned true",
    ),
    pytest.param(
        live_deployment(**{"metadata__labels": {"app.kubernetes.io/name": "other"}}),
        "Deployment default/web: metadata.labels[\"app.kubernetes.io/name\"] is 'other', release says 'web'",
        id="a label the release sets changed by hand",
    ),
    pytest.param(
        live_deployment(**{f"{C}__ports": "not a list"}),
        APP + "ports is 'not a list', release says [{'name': 'http', 'containerPort': 8080}]",
        id="a field whose type changed",
    ),
]


@pytest.mark.parametrize(("live", "message"), DRIFT)
def test_drift_in_a_field_the_release_sets_is_reported(live: dict[str, Any], message: str) -> None:
    drift = compare(DEPLOYMENT, live)
    assert drift is not None
    assert drift.message == message
    assert drift.key == ("apps/v1", "Deployment", "default", "web")
    assert not drift.missing


def test_replicas_owned_by_an_hpa_are_not_drift_but_other_fields_still_are() -> None:
    assert compare(DEPLOYMENT, live_deployment(spec__replicas=7), ignore_replicas=True) is None
    drift = compare(
        DEPLOYMENT, live_deployment(spec__replicas=7, **{f"{C}__image": "x"}), ignore_replicas=True
    )
    assert drift is not None
    assert [d.path for d in drift.differences] == ["spec.template.spec.containers[app].image"]


CONFIGMAP: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "cfg", "namespace": "default"},
    "data": {"region": "eu", "tier": "edge"},
}


@pytest.mark.parametrize(
    ("live", "expected"),
    [
        pytest.param(None, "ConfigMap default/cfg: missing", id="a deleted ConfigMap is missing"),
        pytest.param(
            {**CONFIGMAP, "data": {"region": "us", "tier": "edge"}},
            "ConfigMap default/cfg: data.region is 'us', release says 'eu'",
            id="a ConfigMap value edited by hand",
        ),
        pytest.param(
            {**CONFIGMAP, "data": {"tier": "edge"}},
            "ConfigMap default/cfg: data.region is not set, release says 'eu'",
            id="a ConfigMap key removed by hand",
        ),
        pytest.param(
            {**CONFIGMAP, "data": {"region": "us", "tier": "core", "a": "b"}, "binaryData": {}},
            "ConfigMap default/cfg: data.region is 'us', release says 'eu'; "
            "data.tier is 'core', release says 'edge'",
            id="several edits are all named",
        ),
        pytest.param(
            {**CONFIGMAP, "data": {**CONFIGMAP["data"], "extra": "1"}}, None, id="a key added by hand"
        ),
    ],
)
def test_configmap_drift(live: dict[str, Any] | None, expected: str | None) -> None:
    drift = compare(CONFIGMAP, live)
    assert (drift.message if drift else None) == expected


def test_a_missing_object_is_flagged_missing() -> None:
    drift = compare(CONFIGMAP, None)
    assert drift == Drift(key=("v1", "ConfigMap", "default", "cfg"), missing=True)


def test_many_differences_are_summarised_after_the_first_few() -> None:
    desired = {**CONFIGMAP, "data": {f"k{i}": "a" for i in range(6)}}
    live = {**CONFIGMAP, "data": {f"k{i}": "b" for i in range(6)}}
    drift = compare(desired, live)
    assert drift is not None
    assert len(drift.differences) == 6
    assert drift.message.endswith("data.k2 is 'b', release says 'a'; and 3 more")


SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "db", "namespace": "default"},
    "stringData": {"password": "hunter2"},
}


def test_a_secret_written_as_string_data_matches_its_base64_data() -> None:
    live = {**SECRET, "data": {"password": "aHVudGVyMg=="}}
    del live["stringData"]
    assert compare(SECRET, live) is None


def test_a_changed_secret_never_shows_its_values() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": SECRET["metadata"],
        "data": {"password": "b3RoZXI="},
    }
    drift = compare(SECRET, live)
    assert drift is not None
    assert drift.message == "Secret default/db: data.password differs from the release"
    assert "hunter2" not in drift.message
    assert "aHVudGVyMg" not in drift.message
    assert "b3RoZXI" not in drift.message


def test_status_and_metadata_other_than_labels_and_annotations_are_never_compared() -> None:
    desired = {
        **CONFIGMAP,
        "metadata": {**CONFIGMAP["metadata"], "resourceVersion": "1", "uid": "a"},
        "status": {"x": 1},
    }
    live = {
        **CONFIGMAP,
        "metadata": {**CONFIGMAP["metadata"], "resourceVersion": "2", "uid": "b"},
        "status": {"x": 2},
    }
    assert compare(desired, live) is None


@pytest.mark.parametrize(
    ("desired_value", "live_value", "drifted"),
    [
        pytest.param("500m", "0.5", False, id="500m cpu equals 0.5"),
        pytest.param("1Gi", "1024Mi", False, id="1Gi equals 1024Mi"),
        pytest.param("1G", "1Gi", True, id="1G is not 1Gi"),
        pytest.param(1, "1000m", False, id="the integer 1 equals 1000m"),
        pytest.param("2", "2000m", False, id="2 equals 2000m"),
        pytest.param("100Mi", "100Mx", True, id="an unknown suffix never equals"),
    ],
)
def test_quantities_compare_by_value(desired_value: Any, live_value: Any, drifted: bool) -> None:
    def pvc(size: Any) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"resources": {"requests": {"storage": size}}},
        }

    assert (compare(pvc(desired_value), pvc(live_value)) is not None) is drifted


def test_a_cluster_scoped_object_is_named_without_namespace() -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "reader"},
    }
    drift = compare({**role, "rules": [{"verbs": ["get"]}]}, {**role, "rules": [{"verbs": ["get", "list"]}]})
    assert drift is not None
    assert drift.message == "ClusterRole reader: rules[0].verbs is ['get', 'list'], release says ['get']"


def test_list_items_that_share_a_name_are_compared_by_position() -> None:
    """volumeMounts may mount one volume at two paths: matching by name would mix them up."""

    def pod(mounts: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"volumeMounts": mounts},
        }

    mounts = [{"name": "data", "mountPath": "/a"}, {"name": "data", "mountPath": "/b"}]
    assert compare(pod(mounts), pod(mounts)) is None
    drift = compare(pod(mounts), pod([mounts[0], {"name": "data", "mountPath": "/c"}]))
    assert drift is not None
    assert drift.message == "Pod p: spec.volumeMounts[1].mountPath is '/c', release says '/b'"
