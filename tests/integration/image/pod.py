"""Run the agent image the way the kubelet would run the Deployment from ``flotilla-agent manifests``.

:func:`docker_options` reads the pod template -- user and group, read-only root, capabilities, env,
volume mounts, memory limit -- and turns it into ``docker run`` options, with the volumes backed by
host directories the test prepares and the ServiceAccount token, CA and namespace mounted where a
kubelet puts them.  Nothing is added that the manifests do not say, except what the kubelet itself
adds: ``KUBERNETES_SERVICE_HOST``/``PORT`` and the service-account mount.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.localcluster import Cluster

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_MEMORY_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def agent_container(deployment: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(pod spec, the agent container) of the Deployment."""
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    return spec, container


def docker_options(
    deployment: Mapping[str, Any],
    *,
    volumes: Mapping[str, Path],
    service_account: Path,
    api_port: int,
    limit_cpu: bool = True,
) -> list[str]:
    spec, container = agent_container(deployment)
    security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    options = ["--user", f"{security['runAsUser']}:{security['runAsGroup']}"]
    if "fsGroup" in spec.get("securityContext", {}):
        options += ["--group-add", str(spec["securityContext"]["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    for capability in security.get("capabilities", {}).get("drop", []):
        options += ["--cap-drop", capability]
    if security.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    for variable in container.get("env", []):
        if "value" not in variable:
            raise ValueError(f"env {variable['name']}: only plain values are supported here")
        options += ["--env", f"{variable['name']}={variable['value']}"]
    options += ["--env", "KUBERNETES_SERVICE_HOST=127.0.0.1", "--env", f"KUBERNETES_SERVICE_PORT={api_port}"]
    for mount in container.get("volumeMounts", []):
        read_only = ":ro" if mount.get("readOnly") else ""
        options += ["--volume", f"{volumes[mount['name']]}:{mount['mountPath']}{read_only}"]
    if spec.get("automountServiceAccountToken", True):
        options += ["--volume", f"{service_account}:{SERVICE_ACCOUNT_DIR}:ro"]
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        options += ["--memory", str(_bytes(limits["memory"]))]
    if limit_cpu and "cpu" in limits:  # emulated architectures run several times slower than a real node
        options += ["--cpus", str(_cpus(limits["cpu"]))]
    return options


def grace_seconds(deployment: Mapping[str, Any]) -> int:
    spec, _ = agent_container(deployment)
    return int(spec.get("terminationGracePeriodSeconds", 30))


def prepare_volumes(
    deployment: Mapping[str, Any], cluster: Cluster, namespace: str, root: Path
) -> dict[str, Path]:
    """Host directories for the pod's volumes: emptyDirs world-writable like the kubelet makes them,
    secret volumes filled from the Secrets in the cluster with the manifest's file mode."""
    spec, _ = agent_container(deployment)
    paths: dict[str, Path] = {}
    for volume in spec["volumes"]:
        path = root / volume["name"]
        path.mkdir(parents=True)
        if "emptyDir" in volume:
            path.chmod(0o777)
        elif "secret" in volume:
            secret: Any = cluster.api(
                f"/api/v1/namespaces/{namespace}/secrets/{volume['secret']['secretName']}"
            )
            mode = volume["secret"].get("defaultMode", 0o644)
            for key, encoded in secret.get("data", {}).items():
                file = path / key
                file.write_bytes(base64.b64decode(encoded))
                os.chown(file, 0, int(spec["securityContext"]["fsGroup"]))
                file.chmod(mode)
        else:
            raise ValueError(f"volume {volume['name']}: only emptyDir and secret volumes are run here")
        paths[volume["name"]] = path
    return paths


def service_account_files(cluster: Cluster, namespace: str, account: str, root: Path) -> Path:
    """token (a TokenRequest for the ServiceAccount), ca.crt and namespace, as the kubelet projects them."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 3600},
    }
    answer: Any = cluster.api(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token", method="POST", body=request
    )
    root.mkdir(parents=True)
    (root / "token").write_text(answer["status"]["token"])
    (root / "ca.crt").write_bytes((cluster.pki / "ca.crt").read_bytes())
    (root / "namespace").write_text(namespace)
    for file in root.iterdir():
        file.chmod(0o644)
    return root


def _bytes(quantity: str) -> int:
    for suffix, factor in _MEMORY_UNITS.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(quantity)


def _cpus(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
