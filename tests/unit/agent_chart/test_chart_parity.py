"""The agent's Helm chart and ``flotilla-agent manifests`` render the same objects, with the real helm,
for each RBAC mode, each state storage, with and without hub and Git credentials, placement and
resources; the chart lints clean and rejects bad values with helm's message naming them."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent import __version__, placement
from agent.chart import CHART_NAME, RULES_FILE, chart_dir, chart_values, rules_document
from agent.install_options import InstallOptions
from agent.manifests import build_manifests
from tests.localcluster import find_tools

BASE = InstallOptions(cluster="edge-berlin-1", repo_url="https://git.example.com/fleet.git")
CASES = {
    "defaults": BASE,
    "hub-and-credentials": replace(
        BASE, hub_url="https://hub.example.com", git_credentials_secret="fleet-git", branch="prod"
    ),
    "least-privilege-hostpath-arm": replace(
        BASE,
        rbac="least-privilege",
        state_storage="hostPath",
        host_path="/data/flotilla",
        tag="v1.2.0",
        node_selector=(("kubernetes.io/arch", "arm64"),),
        tolerations=(
            placement.toleration("edge=arm:NoSchedule"),
            placement.toleration("dedicated:NoExecute"),
        ),
        resources=placement.Resources("20m", "64Mi", "1", "512Mi"),
    ),
    "namespaced-emptydir-own-namespace": replace(
        BASE,
        cluster="Edge Site #7 (Köln)",
        namespace="site-agent",
        rbac="namespaced",
        target_namespaces=("shop", "site-agent", "sensors"),
        state_storage="emptyDir",
        commit="0123456789abcdef0123456789abcdef01234567",
        hub_url="http://127.0.0.1:9000",
        hub_token_secret="site7-token",
        image="registry.local/flotilla-agent:dev",
        image_pull_policy="Never",
        interval=15,
        self_upgrade_deadline=90,
        repo_path="fleet",
    ),
    "signatures-and-sops-least-privilege": replace(
        BASE,
        rbac="least-privilege",
        verify_signatures="ssh",
        trusted_keys_configmap="fleet-signers",
        sops_key_secret="site-age-key",
        hub_url="https://hub.example.com",
    ),
    "gpg-cluster-admin": replace(BASE, verify_signatures="gpg", trusted_keys_configmap="keys"),
    "pvc-class-no-namespace-object": replace(
        BASE, storage_class="local-path", storage_size="2Gi", create_namespace=False
    ),
}


def helm(
    *args: str, values: dict[str, Any] | None = None, tmp_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [find_tools().helm, *args]
    if values is not None:
        assert tmp_path is not None
        values_file = tmp_path / "values.json"
        values_file.write_text(json.dumps(values))
        command += ["--values", str(values_file)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_chart_renders_exactly_the_objects_manifests_builds(case: str, tmp_path: Path) -> None:
    options = CASES[case]
    result = helm(
        "template", "flotilla-agent", str(chart_dir()), "--namespace", options.namespace,
        values=chart_values(options), tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = sorted((doc for doc in yaml.safe_load_all(result.stdout) if doc), key=key)
    expected = sorted(build_manifests(options), key=key)
    assert [key(o) for o in rendered] == [key(o) for o in expected]
    for got, want in zip(rendered, expected, strict=True):
        assert got == want, key(want)


def test_chart_lints_clean_for_every_case(tmp_path: Path) -> None:
    for case, options in CASES.items():
        result = helm("lint", "--strict", str(chart_dir()), values=chart_values(options), tmp_path=tmp_path)
        assert result.returncode == 0, (case, result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"rbac": "root"}, "rbac"),
        ({"stateStorage": "nfs"}, "stateStorage"),
        ({"cluster": ""}, "cluster"),
        ({"rbac": "namespaced", "targetNamespaces": []}, "targetNamespaces"),
        ({"branch": "main", "tag": "v1"}, "branch, tag and commit"),
        ({"interval": 0}, "interval"),
        ({"hostPath": "relative/dir"}, "hostPath"),
        ({"verifySignatures": "ssh"}, "trustedKeysConfigMap"),
        ({"verifySignatures": "pgp"}, "verifySignatures"),
    ],
)
def test_bad_values_are_refused_naming_the_value(
    override: dict[str, Any], named: str, tmp_path: Path
) -> None:
    values = {**chart_values(BASE), **override}
    result = helm("template", "x", str(chart_dir()), values=values, tmp_path=tmp_path)
    assert result.returncode != 0
    assert named in result.stderr


def test_rules_file_is_generated_from_agent_rbac() -> None:
    assert (chart_dir() / RULES_FILE).read_text() == rules_document()


def test_chart_version_is_the_agents_version() -> None:
    chart = yaml.safe_load((chart_dir() / "Chart.yaml").read_text())
    values = yaml.safe_load((chart_dir() / "values.yaml").read_text())
    assert chart["name"] == CHART_NAME
    assert chart["version"] == chart["appVersion"] == __version__
    assert values["image"] == f"ghcr.io/flotilla/flotilla-agent:{__version__}"
