"""Smoke tests proving the local control plane is real: Helm installs onto it, pods become Ready
through the scheduler and kwok, and two clusters started side by side do not see each other."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.localcluster import Cluster

pytestmark = pytest.mark.cluster

SMOKE_CHART = Path(__file__).resolve().parent.parent / "charts" / "smoke"


def helm(cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        [cluster.tools.helm, *args], env=cluster.env(), capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_api_server_reports_its_real_version(cluster: Cluster) -> None:
    version = cluster.api("/version")
    assert version["gitVersion"] == "v1.36.3"


def test_helm_release_reaches_two_available_replicas_and_uninstalls_cleanly(cluster: Cluster) -> None:
    helm(
        cluster,
        "upgrade",
        "--install",
        "smoke",
        str(SMOKE_CHART),
        "--namespace",
        "smoke",
        "--create-namespace",
        "--wait",
        "--timeout",
        "120s",
    )

    deployment = cluster.api("/apis/apps/v1/namespaces/smoke/deployments/smoke-web")
    assert deployment["status"]["availableReplicas"] == 2
    pods = cluster.api("/api/v1/namespaces/smoke/pods?labelSelector=app%3Dsmoke-web")["items"]
    assert len(pods) == 2
    assert all(p["spec"]["nodeName"] == "kwok-node-0" for p in pods)
    assert cluster.api("/api/v1/namespaces/smoke/services/smoke-web")["spec"]["type"] == "ClusterIP"
    assert cluster.api("/api/v1/namespaces/smoke/configmaps/smoke-config")["data"] == {"greeting": "hello"}

    releases = json.loads(helm(cluster, "list", "--namespace", "smoke", "--output", "json"))
    assert [(r["name"], r["status"]) for r in releases] == [("smoke", "deployed")]

    helm(cluster, "uninstall", "smoke", "--namespace", "smoke", "--wait", "--timeout", "60s")
    assert cluster.api("/apis/apps/v1/namespaces/smoke/deployments")["items"] == []
    assert cluster.api("/api/v1/namespaces/smoke/configmaps?labelSelector=app%3Dsmoke-web")["items"] == []
    wait_for("pods deleted", lambda: cluster.api("/api/v1/namespaces/smoke/pods")["items"] == [])


def test_two_clusters_at_once_are_isolated(make_cluster: Callable[..., Cluster]) -> None:
    first, second = make_cluster("a"), make_cluster("b")
    assert first.server != second.server

    helm(
        first,
        "upgrade",
        "--install",
        "only-here",
        str(SMOKE_CHART),
        "--namespace",
        "iso",
        "--create-namespace",
        "--set",
        "replicas=1",
        "--wait",
        "--timeout",
        "120s",
    )

    assert [r["name"] for r in json.loads(helm(first, "list", "-A", "--output", "json"))] == ["only-here"]
    assert json.loads(helm(second, "list", "-A", "--output", "json")) == []
    namespaces = [n["metadata"]["name"] for n in second.api("/api/v1/namespaces")["items"]]
    assert "iso" not in namespaces
