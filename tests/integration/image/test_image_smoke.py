"""The agent image as built from the Dockerfile, on every architecture it ships for (arm64 and
arm/v7 run under QEMU): it is the platform it claims, its agent and tools run and report their
versions and machine, it validates a fleet repo mounted read-only with a read-only root as uid
10001, and ``make image-save`` tars load into Docker and containerd."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agent import __version__
from tests.image import engine

pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

ARCHES = pytest.mark.parametrize("arch", engine.ARCHES)
# What the Deployment from `flotilla-agent manifests` imposes; every command below runs under it.
POD_LIKE = [
    "--read-only",
    "--user",
    "10001:10001",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]
BUILD_TOOLS = engine.REPO_ROOT / "tests" / "tools" / "build-tools.sh"


def run(image: str, *args: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return engine.run(image, args, options=[*POD_LIKE, *options])


@ARCHES
def test_image_is_the_platform_it_claims_non_root_with_the_state_volume(
    arch: str, agent_image: Callable[[str], str]
) -> None:
    config = engine.inspect_image(agent_image(arch))
    os_, architecture, *variant = engine.PLATFORMS[arch].split("/")
    assert (config["Os"], config["Architecture"], config.get("Variant", "") or "") == (
        os_,
        architecture,
        variant[0] if variant else "",
    )
    settings = config["Config"]
    assert isinstance(settings, dict)
    assert settings["User"] == "10001:10001"
    assert settings["Entrypoint"] == ["/usr/bin/tini", "--", "flotilla-agent"]  # tini as PID 1
    assert "/var/lib/flotilla" in settings["Volumes"]


@ARCHES
def test_agent_reports_its_version_and_the_machine_it_runs_on(
    arch: str, agent_image: Callable[[str], str]
) -> None:
    image = agent_image(arch)
    version = run(image, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"flotilla-agent {__version__}"
    info = run(image, "version", "--output", "json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["machine"] == engine.MACHINES[arch]
    uname = run(image, "-m", options=("--entrypoint", "uname"))
    assert uname.stdout.strip() == engine.MACHINES[arch]


@ARCHES
def test_the_compiled_extensions_are_there_on_every_architecture(
    arch: str, agent_image: Callable[[str], str]
) -> None:
    """PyYAML with libyaml (the agent's YAML parsing on a Pi is several times slower in pure Python)
    and msgspec (lightkube's): on arm/v7 both are cross-compiled on the host, not taken from PyPI."""
    check = "import yaml, msgspec; assert yaml.__with_libyaml__; print(yaml.CSafeLoader.__name__)"
    found = run(agent_image(arch), "-c", check, options=("--entrypoint", "/opt/flotilla/bin/python"))
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "CSafeLoader"


@ARCHES
def test_helm_and_sops_are_the_pinned_versions_built_for_the_target(
    arch: str, agent_image: Callable[[str], str]
) -> None:
    pins = dict(re.findall(r"^(HELM_VERSION|SOPS_VERSION)=(\S+)$", BUILD_TOOLS.read_text(), re.MULTILINE))
    dockerfile = (engine.REPO_ROOT / "Dockerfile").read_text()
    sops_pin = (
        pins.get("SOPS_VERSION") or re.findall(r"^ARG SOPS_VERSION=(\S+)$", dockerfile, re.MULTILINE)[0]
    )
    image = agent_image(arch)
    helm = run(image, "version", "--short", options=("--entrypoint", "helm"))
    assert helm.returncode == 0, helm.stderr
    assert helm.stdout.startswith(f"v{pins['HELM_VERSION']}")
    sops = run(image, "--version", "--disable-version-check", options=("--entrypoint", "sops"))
    assert sops.returncode == 0, sops.stderr
    assert sops_pin in sops.stdout


@ARCHES
def test_validates_the_example_repo_mounted_read_only_and_names_a_broken_file(
    arch: str, agent_image: Callable[[str], str], fleet_repo: Path, tmp_path: Path
) -> None:
    image = agent_image(arch)
    good = run(image, "validate", "/fleet", options=("--volume", f"{fleet_repo}:/fleet:ro"))
    assert good.returncode == 0, good.stdout + good.stderr

    broken = tmp_path / "fleet"
    shutil.copytree(fleet_repo, broken)
    cluster_file = broken / "clusters" / "eu-west" / "eu-west-lyon-1.yaml"
    cluster_file.write_text(cluster_file.read_text().replace("labels:", "labelz:"))
    bad = run(image, "validate", "/fleet", options=("--volume", f"{broken}:/fleet:ro"))
    assert bad.returncode == 1
    assert "clusters/eu-west/eu-west-lyon-1.yaml" in bad.stdout + bad.stderr

    # the next ordinary run after the failure: fixed, it validates again
    cluster_file.write_text(cluster_file.read_text().replace("labelz:", "labels:"))
    again = run(image, "validate", "/fleet", options=("--volume", f"{broken}:/fleet:ro"))
    assert again.returncode == 0, again.stdout + again.stderr


def test_saved_images_load_into_docker_and_import_into_containerd(
    agent_image: Callable[[str], str], tmp_path: Path
) -> None:
    for arch in engine.ARCHES:
        agent_image(arch)
    tars = engine.save(tmp_path, engine.ARCHES, python=sys.executable)
    socket = engine.containerd_socket()
    namespace = f"flotilla-test-{tmp_path.name[-8:].lower()}"
    listed: list[str] = []
    try:
        for arch, tar in zip(engine.ARCHES, tars, strict=True):
            loaded = engine.docker("load", "--input", str(tar), timeout=600)
            assert engine.tag(arch) in loaded.stdout
            imported = subprocess.run(
                ["ctr", "--address", socket, "--namespace", namespace, "images", "import",
                 "--platform", engine.PLATFORMS[arch], str(tar)],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            assert imported.returncode == 0, imported.stderr
        listed = subprocess.run(
            ["ctr", "--address", socket, "--namespace", namespace, "images", "ls", "--quiet"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
        assert sorted(listed) == sorted(f"docker.io/library/{engine.tag(a)}" for a in engine.ARCHES)
    finally:
        for name in listed:
            subprocess.run(
                ["ctr", "--address", socket, "--namespace", namespace, "images", "rm", name],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
