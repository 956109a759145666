"""The install manifests: every object an operator needs, hardened pods, secrets only referenced,
each storage and RBAC option, and a command line that rejects bad names before printing anything."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

import pytest
import yaml

from agent import __version__, selfupgrade
from agent.install_options import InstallOptions
from agent.manifests import build_manifests, render_manifests
from agent.manifests_cli import add_manifests_command
from agent.settings_table import SETTINGS

BASE = InstallOptions(cluster="edge-berlin-1", repo_url="https://git.example.org/fleet.git")
WITH_HUB = InstallOptions(
    cluster="edge-berlin-1",
    repo_url="https://git.example.org/fleet.git",
    hub_url="https://hub.example.org",
    git_credentials_secret="fleet-git",
)


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == kind]


def the(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(options: InstallOptions) -> dict[str, Any]:
    spec: dict[str, Any] = the(build_manifests(options), "Deployment")["spec"]["template"]["spec"]
    return spec


def agent_container(options: InstallOptions) -> dict[str, Any]:
    containers = pod_spec(options)["containers"]
    assert [c["name"] for c in containers] == ["agent"]
    container: dict[str, Any] = containers[0]
    return container


def env_of(options: InstallOptions) -> dict[str, str]:
    return {e["name"]: e["value"] for e in agent_container(options)["env"]}


def test_default_install_has_namespace_account_admin_binding_claim_and_deployment_in_apply_order() -> None:
    manifests = build_manifests(BASE)
    assert [m["kind"] for m in manifests] == [
        "Namespace",
        "ServiceAccount",
        "ClusterRoleBinding",
        "PersistentVolumeClaim",
        "Deployment",
    ]
    assert the(manifests, "Namespace")["metadata"]["name"] == "flotilla-system"
    for namespaced in ("ServiceAccount", "PersistentVolumeClaim", "Deployment"):
        assert the(manifests, namespaced)["metadata"]["namespace"] == "flotilla-system"


def test_rendered_yaml_parses_back_to_the_same_objects_without_anchors() -> None:
    text = render_manifests(WITH_HUB)
    assert list(yaml.safe_load_all(text)) == build_manifests(WITH_HUB)
    assert "&id" not in text, "plain YAML: no anchors or aliases for shared lists"


def test_header_tells_which_secrets_to_create_without_any_secret_value() -> None:
    header = [line for line in render_manifests(WITH_HUB).splitlines() if line.startswith("#")]
    joined = "\n".join(header)
    assert "create secret generic flotilla-hub-token --from-file=token=" in joined
    assert "create secret generic fleet-git --from-file=credentials.yaml=" in joined
    assert "'edge-berlin-1'" in header[0]


def test_deployment_is_a_single_replica_whose_old_pod_stays_until_the_new_one_is_ready() -> None:
    deployment = the(build_manifests(BASE), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert deployment["spec"]["progressDeadlineSeconds"] == 600  # the self-upgrade deadline's default
    quick = the(build_manifests(replace(BASE, self_upgrade_deadline=90)), "Deployment")
    assert quick["spec"]["progressDeadlineSeconds"] == 90
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert (
        pod_spec(BASE)["serviceAccountName"]
        == the(build_manifests(BASE), "ServiceAccount")["metadata"]["name"]
    )


def test_agent_container_is_locked_down_and_resource_bounded() -> None:
    container = agent_container(BASE)
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "96Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    pod = pod_spec(BASE)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 10001  # makes the PVC and secret files readable
    assert container["args"] == ["run"]


def test_read_only_root_still_has_writable_state_and_tmp() -> None:
    mounts = {m["mountPath"]: m["name"] for m in agent_container(BASE)["volumeMounts"]}
    assert mounts["/var/lib/flotilla"] == "state"
    assert mounts["/tmp"] == "tmp"
    volumes = {v["name"]: v for v in pod_spec(BASE)["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {}


def test_default_image_is_this_version_and_image_options_are_passed_through() -> None:
    assert agent_container(BASE)["image"] == f"ghcr.io/flotilla/flotilla-agent:{__version__}"
    custom = InstallOptions(
        cluster="c", repo_url="r", image="registry.local:5000/agent:dev", image_pull_policy="Never"
    )
    assert agent_container(custom)["image"] == "registry.local:5000/agent:dev"
    assert agent_container(custom)["imagePullPolicy"] == "Never"


def test_env_vars_carry_the_settings_under_the_agents_own_variable_names() -> None:
    options = InstallOptions(
        cluster="edge-7",
        repo_url="ssh://git@git.example.org/fleet.git",
        hub_url="https://hub.example.org",
        branch="production",
        repo_path="fleets/eu",
        interval=30,
        self_upgrade_deadline=90,
        git_credentials_secret="fleet-git",
    )
    assert env_of(options) == {
        "FLOTILLA_CLUSTER": "edge-7",
        "FLOTILLA_REPO_URL": "ssh://git@git.example.org/fleet.git",
        "FLOTILLA_BRANCH": "production",
        "FLOTILLA_REPO_PATH": "fleets/eu",
        "FLOTILLA_INTERVAL": "30",
        "FLOTILLA_STATE_DIR": "/var/lib/flotilla",
        "FLOTILLA_IMAGE": options.image,
        "FLOTILLA_SELF_UPGRADE_DEADLINE": "90",
        "FLOTILLA_HUB_URL": "https://hub.example.org",
        "FLOTILLA_HUB_TOKEN_FILE": "/etc/flotilla/hub/token",
        "FLOTILLA_CREDENTIALS_FILE": "/etc/flotilla/git/credentials.yaml",
    }
    # and its self-upgrade watch's two
    known = {setting.env for setting in SETTINGS} | {selfupgrade.IMAGE_ENV, selfupgrade.DEADLINE_ENV}
    assert set(env_of(options)) <= known, "every variable must be one the agent reads"


def test_a_pinned_tag_or_commit_replaces_the_branch() -> None:
    assert env_of(InstallOptions(cluster="c", repo_url="r", tag="v1.2.0"))["FLOTILLA_TAG"] == "v1.2.0"
    pinned = env_of(InstallOptions(cluster="c", repo_url="r", commit="0123abc"))
    assert pinned["FLOTILLA_COMMIT"] == "0123abc"
    assert "FLOTILLA_BRANCH" not in pinned


def test_without_hub_or_credentials_nothing_secret_is_mounted() -> None:
    assert {v["name"] for v in pod_spec(BASE)["volumes"]} == {"state", "tmp"}
    assert "FLOTILLA_HUB_URL" not in env_of(BASE)
    assert "FLOTILLA_HUB_TOKEN_FILE" not in env_of(BASE)
    assert "FLOTILLA_CREDENTIALS_FILE" not in env_of(BASE)


def test_secrets_are_referenced_by_name_and_mounted_read_only_never_inlined() -> None:
    manifests = build_manifests(WITH_HUB)
    assert by_kind(manifests, "Secret") == []
    volumes = {v["name"]: v for v in pod_spec(WITH_HUB)["volumes"]}
    assert volumes["hub-token"]["secret"] == {"secretName": "flotilla-hub-token", "defaultMode": 0o440}
    assert volumes["git-credentials"]["secret"] == {"secretName": "fleet-git", "defaultMode": 0o440}
    mounts = {m["name"]: m for m in agent_container(WITH_HUB)["volumeMounts"]}
    assert mounts["hub-token"] == {"name": "hub-token", "mountPath": "/etc/flotilla/hub", "readOnly": True}
    assert mounts["git-credentials"]["mountPath"] == "/etc/flotilla/git"
    assert mounts["git-credentials"]["readOnly"] is True
    named = InstallOptions(cluster="c", repo_url="r", hub_url="https://h", hub_token_secret="edge-7-token")
    assert {v["name"]: v for v in pod_spec(named)["volumes"]}["hub-token"]["secret"][
        "secretName"
    ] == "edge-7-token"


def test_cluster_admin_rbac_binds_the_service_account_to_cluster_admin() -> None:
    manifests = build_manifests(BASE)
    assert by_kind(manifests, "ClusterRole") == []
    binding = the(manifests, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flotilla-agent", "namespace": "flotilla-system"}
    ]


def granted(role: dict[str, Any], group: str, resource: str, verb: str) -> bool:
    return any(
        group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
        for rule in role["rules"]
    )


def test_least_privilege_role_covers_chart_kinds_and_helm_storage_but_not_cluster_extensions() -> None:
    options = InstallOptions(cluster="c", repo_url="r", rbac="least-privilege")
    manifests = build_manifests(options)
    role = the(manifests, "ClusterRole")
    assert the(manifests, "ClusterRoleBinding")["roleRef"]["name"] == role["metadata"]["name"]
    for group, resource in [
        ("", "namespaces"),
        ("", "secrets"),  # Helm's release records and charts' own Secrets
        ("", "configmaps"),
        ("", "services"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("batch", "jobs"),
        ("networking.k8s.io", "ingresses"),
        ("rbac.authorization.k8s.io", "roles"),
    ]:
        assert granted(role, group, resource, "create"), f"{group or 'core'}/{resource}"
        assert granted(role, group, resource, "delete"), f"{group or 'core'}/{resource}"
    assert granted(role, "", "events", "list")
    assert not granted(role, "", "events", "create")
    groups = {g for rule in role["rules"] for g in rule["apiGroups"]}
    assert "apiextensions.k8s.io" not in groups
    assert "admissionregistration.k8s.io" not in groups
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs.isdisjoint({"*", "escalate", "bind"})
    assert all("*" not in rule["resources"] for rule in role["rules"])


def test_cluster_scoped_names_include_the_namespace_so_two_installs_do_not_collide() -> None:
    first = build_manifests(
        InstallOptions(cluster="c", repo_url="r", namespace="agent-a", rbac="least-privilege")
    )
    second = build_manifests(
        InstallOptions(cluster="c", repo_url="r", namespace="agent-b", rbac="least-privilege")
    )
    names = {m["metadata"]["name"] for m in first if m["kind"].startswith("Cluster")}
    assert names.isdisjoint(m["metadata"]["name"] for m in second if m["kind"].startswith("Cluster"))


def test_pvc_storage_claims_a_volume_for_the_state_directory() -> None:
    options = InstallOptions(cluster="c", repo_url="r", storage_size="2Gi", storage_class="local-path")
    claim = the(build_manifests(options), "PersistentVolumeClaim")
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "2Gi"}},
        "storageClassName": "local-path",
    }
    state = {v["name"]: v for v in pod_spec(options)["volumes"]}["state"]
    assert state["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}
    assert "storageClassName" not in the(build_manifests(BASE), "PersistentVolumeClaim")["spec"]


def test_empty_dir_storage_needs_no_claim_and_keeps_the_restricted_pod_security_label() -> None:
    options = InstallOptions(cluster="c", repo_url="r", state_storage="emptyDir")
    manifests = build_manifests(options)
    assert by_kind(manifests, "PersistentVolumeClaim") == []
    assert {v["name"]: v for v in pod_spec(options)["volumes"]}["state"] == {"name": "state", "emptyDir": {}}
    labels = the(manifests, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert "initContainers" not in pod_spec(options)


def test_host_path_storage_uses_a_node_directory_owned_for_the_agent_by_a_chown_only_init_container() -> None:
    options = InstallOptions(cluster="c", repo_url="r", state_storage="hostPath", host_path="/data/flotilla")
    manifests = build_manifests(options)
    assert by_kind(manifests, "PersistentVolumeClaim") == []
    state = {v["name"]: v for v in pod_spec(options)["volumes"]}["state"]
    assert state["hostPath"] == {"path": "/data/flotilla", "type": "DirectoryOrCreate"}
    [init] = pod_spec(options)["initContainers"]
    assert init["command"] == ["chown", "10001:10001", "/var/lib/flotilla"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    assert agent_container(options)["securityContext"]["runAsNonRoot"] is True
    # hostPath volumes break the "restricted" Pod Security Standard, so the label is not set.
    assert "pod-security.kubernetes.io/enforce" not in the(manifests, "Namespace")["metadata"]["labels"]


def manifests_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flotilla-agent")
    add_manifests_command(parser.add_subparsers(dest="command"))
    return parser


def test_command_prints_the_yaml_for_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    args = manifests_parser().parse_args(
        [
            "manifests",
            "--cluster",
            "edge-9",
            "--repo",
            "https://git.example.org/fleet.git",
            "--hub",
            "https://hub.example.org",
            "--namespace",
            "edge-agent",
            "--rbac",
            "least-privilege",
            "--state-storage",
            "emptyDir",
            "--interval",
            "15",
            "--hub-token-secret",
            "edge-9-hub",
        ]
    )
    assert args.handler(args) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [m["kind"] for m in printed] == [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",  # the agent's Lease, in its own namespace
        "RoleBinding",
        "Deployment",
    ]
    deployment = printed[-1]
    assert deployment["metadata"]["namespace"] == "edge-agent"
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["FLOTILLA_CLUSTER"] == "edge-9"
    assert env["FLOTILLA_INTERVAL"] == "15"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["hub-token"]["secret"]["secretName"] == "edge-9-hub"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--namespace", "Flotilla_System"], "--namespace: 'Flotilla_System' is not a valid Kubernetes name"),
        (["--interval", "0"], "--interval: '0' must be positive"),
        (["--interval", "soon"], "--interval: 'soon' is not a whole number"),
        (["--rbac", "none"], "--rbac: invalid choice: 'none'"),
        (["--state-storage", "nfs"], "--state-storage: invalid choice: 'nfs'"),
        (["--host-path", "data/flotilla"], "--host-path: 'data/flotilla' is not an absolute path"),
        (
            ["--git-credentials-secret", "Git Creds"],
            "--git-credentials-secret: 'Git Creds' is not a valid Secret",
        ),
        (["--branch", "main", "--tag", "v1"], "--tag: not allowed with argument --branch"),
    ],
)
def test_bad_flags_are_rejected_with_the_flag_named_and_nothing_printed(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        manifests_parser().parse_args(["manifests", "--cluster", "c", "--repo", "r", *extra])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_cluster_and_repo_are_required() -> None:
    with pytest.raises(SystemExit):
        manifests_parser().parse_args(["manifests", "--repo", "r"])
    with pytest.raises(SystemExit):
        manifests_parser().parse_args(["manifests", "--cluster", "c"])


def test_signature_verification_mounts_the_trusted_keys_configmap_and_sets_the_agents_settings() -> None:
    options = InstallOptions(
        cluster="c", repo_url="r", verify_signatures="ssh", trusted_keys_configmap="fleet-signers"
    )
    rendered = render_manifests(options)
    pod = pod_spec(options)
    env = env_of(options)
    assert env["FLOTILLA_VERIFY_SIGNATURES"] == "ssh"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "trusted-keys")
    assert env["FLOTILLA_TRUSTED_KEYS"].startswith(mount["mountPath"] + "/")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "trusted-keys")
    assert volume == {"name": "trusted-keys", "configMap": {"name": "fleet-signers"}}
    assert "create configmap fleet-signers --from-file=trusted-keys=./allowed_signers" in rendered


def test_the_sops_key_secret_is_named_to_the_agent_not_mounted() -> None:
    options = InstallOptions(cluster="c", repo_url="r", namespace="edge", sops_key_secret="site-age")
    pod = pod_spec(options)
    assert env_of(options)["FLOTILLA_SOPS_KEY_SECRET"] == "edge/site-age"
    assert all("site-age" not in str(volume) for volume in pod["volumes"])
    assert "create secret generic site-age" in render_manifests(options)


def test_verify_signatures_without_a_keys_configmap_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = manifests_parser().parse_args(
        ["manifests", "--cluster", "c", "--repo", "r", "--verify-signatures", "gpg"]
    )
    code = args.handler(args)
    captured = capsys.readouterr()
    assert code == 2
    assert "--trusted-keys-configmap" in captured.err
    assert captured.out == ""
