"""The agent's Deployment in the install manifests: its pod, container, environment, volumes and
security contexts (:func:`deployment_manifest`).
"""

from __future__ import annotations

from agent import readiness
from agent.install_options import (
    AGENT_UID,
    GIT_CREDENTIALS_DIR,
    GIT_CREDENTIALS_KEY,
    HUB_TOKEN_DIR,
    HUB_TOKEN_KEY,
    NAME,
    SECRET_FILE_MODE,
    STATE_DIR,
    TRUSTED_KEYS_DIR,
    TRUSTED_KEYS_KEY,
    InstallOptions,
    Manifest,
    install_labels,
    object_metadata,
)


def _env(options: InstallOptions) -> list[Manifest]:
    values: list[tuple[str, str | None]] = [
        ("FLOTILLA_CLUSTER", options.cluster),
        ("FLOTILLA_REPO_URL", options.repo_url),
        ("FLOTILLA_BRANCH", options.branch),
        ("FLOTILLA_TAG", options.tag),
        ("FLOTILLA_COMMIT", options.commit),
        ("FLOTILLA_REPO_PATH", options.repo_path),
        ("FLOTILLA_INTERVAL", str(options.interval)),
        ("FLOTILLA_STATE_DIR", STATE_DIR),
        ("FLOTILLA_IMAGE", options.image),  # the agent's own image: its self-upgrade watch compares it
        ("FLOTILLA_SELF_UPGRADE_DEADLINE", str(options.self_upgrade_deadline)),
        ("FLOTILLA_HUB_URL", options.hub_url),
        (
            "FLOTILLA_NAMESPACES",
            ",".join(options.target_namespaces) if options.rbac == "namespaced" else None,
        ),
    ]
    if options.hub_url:
        values.append(("FLOTILLA_HUB_TOKEN_FILE", f"{HUB_TOKEN_DIR}/{HUB_TOKEN_KEY}"))
    if options.git_credentials_secret:
        values.append(("FLOTILLA_CREDENTIALS_FILE", f"{GIT_CREDENTIALS_DIR}/{GIT_CREDENTIALS_KEY}"))
    if options.verify_signatures != "off":
        values.append(("FLOTILLA_VERIFY_SIGNATURES", options.verify_signatures))
        values.append(("FLOTILLA_TRUSTED_KEYS", f"{TRUSTED_KEYS_DIR}/{TRUSTED_KEYS_KEY}"))
    if options.sops_key_secret:
        values.append(("FLOTILLA_SOPS_KEY_SECRET", f"{options.namespace}/{options.sops_key_secret}"))
    return [{"name": name, "value": value} for name, value in values if value is not None]


def _volumes(options: InstallOptions) -> tuple[list[Manifest], list[Manifest]]:
    """(pod volumes, agent container mounts)."""
    if options.state_storage == "pvc":
        state: Manifest = {"persistentVolumeClaim": {"claimName": f"{NAME}-state"}}
    elif options.state_storage == "hostPath":
        state = {"hostPath": {"path": options.host_path, "type": "DirectoryOrCreate"}}
    else:
        state = {"emptyDir": {}}
    volumes: list[Manifest] = [{"name": "state", **state}, {"name": "tmp", "emptyDir": {}}]
    mounts: list[Manifest] = [
        {"name": "state", "mountPath": STATE_DIR},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (a private emptyDir, not a shared /tmp)
    ]
    secrets = [(options.git_credentials_secret, "git-credentials", GIT_CREDENTIALS_DIR)]
    if options.hub_url:
        secrets.append((options.hub_token_secret, "hub-token", HUB_TOKEN_DIR))
    for secret_name, volume_name, mount_path in secrets:
        if secret_name:
            volumes.append(
                {"name": volume_name, "secret": {"secretName": secret_name, "defaultMode": SECRET_FILE_MODE}}
            )
            mounts.append({"name": volume_name, "mountPath": mount_path, "readOnly": True})
    if options.verify_signatures != "off" and options.trusted_keys_configmap:
        volumes.append({"name": "trusted-keys", "configMap": {"name": options.trusted_keys_configmap}})
        mounts.append({"name": "trusted-keys", "mountPath": TRUSTED_KEYS_DIR, "readOnly": True})
    return volumes, mounts


def _container_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": AGENT_UID,
        "runAsGroup": AGENT_UID,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _state_dir_owner(options: InstallOptions) -> Manifest:
    """Init container for hostPath only: fsGroup does not apply to hostPath volumes, so the directory
    the kubelet creates is root's.  It gets CHOWN and nothing else, and runs before the agent."""
    return {
        "name": "state-dir-owner",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["chown", f"{AGENT_UID}:{AGENT_UID}", STATE_DIR],
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "32Mi"},
        },
        "volumeMounts": [{"name": "state", "mountPath": STATE_DIR}],
    }


def _same_node_as_agent(selector: Manifest) -> Manifest:
    term = {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": "kubernetes.io/hostname"}
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}


def deployment_manifest(options: InstallOptions) -> Manifest:
    volumes, mounts = _volumes(options)
    selector = {"app.kubernetes.io/name": NAME}
    container: Manifest = {
        "name": "agent",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "args": ["run"],
        "env": _env(options),
        "resources": options.resources.manifest(),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        **readiness.probe_manifest(),
    }
    pod_spec: Manifest = {
        "serviceAccountName": NAME,
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,  # no Service env vars: the agent reads only its own settings
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": AGENT_UID,
            "runAsGroup": AGENT_UID,
            "fsGroup": AGENT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 60,
        "containers": [container],
        "volumes": volumes,
    }
    if options.state_storage == "pvc":
        # The state claim is ReadWriteOnce: the surge pod must start on the old pod's node.  (A pod
        # matching its own required affinity term schedules anywhere when no such pod exists yet.)
        pod_spec["affinity"] = _same_node_as_agent(selector)
    if options.node_selector:
        pod_spec["nodeSelector"] = dict(options.node_selector)
    if options.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in options.tolerations]
    if options.state_storage == "hostPath":
        del pod_spec["securityContext"]["runAsNonRoot"]  # the init container must be root to chown
        pod_spec["initContainers"] = [_state_dir_owner(options)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(options, NAME),
        "spec": {
            "replicas": 1,
            # The old agent keeps running until the new one has completed a pass (its readiness
            # probe), so a broken new version is rolled back by the old one (agent.selfupgrade).
            # Two agents never act at once: the Lease (agent.lease) lets one of them change things.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": options.self_upgrade_deadline,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": install_labels(options)}, "spec": pod_spec},
        },
    }
