"""Fixtures for the image tests: the Docker engine (started, with QEMU registered, by
tests/image/engine.sh) and the agent image per architecture, built by tests/image/build.sh once
per session (seconds when nothing changed since the last ``make image``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.image import engine


@pytest.fixture(scope="session")
def docker_engine() -> None:
    engine.ensure_engine()


@pytest.fixture(scope="session")
def agent_image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``agent_image(arch)`` -> the image tag, built from the working tree if anything changed."""
    built: dict[str, str] = {}
    logs = tmp_path_factory.mktemp("image-build")

    def get(arch: str) -> str:
        if arch not in built:
            engine.build([arch], log_path=logs / f"build-{arch}.log", python=sys.executable)
            built[arch] = engine.tag(arch)
        return built[arch]

    return get


@pytest.fixture
def fleet_repo() -> Path:
    return engine.REPO_ROOT / "fleet-repo-example"
