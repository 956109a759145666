"""Fixtures for the agent's integration tests: a fleet repo on a real Git server and an agent harness."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.gitserver import GitServer
from tests.integration.agent.harness import AgentHarness, FleetRepo, make_fleet_repo
from tests.localcluster import Cluster

_counter = itertools.count()


@pytest.fixture
def unique() -> str:
    """A short name no other test uses: cluster names and namespaces stay apart on the shared cluster."""
    return f"t{next(_counter)}"


@pytest.fixture
def fleet_repo_factory(git_server: GitServer, tmp_path: Path) -> Callable[[dict[str, str]], FleetRepo]:
    def make(files: dict[str, str]) -> FleetRepo:
        return make_fleet_repo(git_server, tmp_path, f"fleet{next(_counter)}", files)

    return make


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Callable[..., AgentHarness]]:
    made: list[AgentHarness] = []

    def make(
        cluster: Cluster, cluster_name: str, repo_url: str, state_dir: Path | None = None, **overrides: object
    ) -> AgentHarness:
        """``state_dir`` apart from the default one makes a second, distinct agent for the cluster."""
        harness = AgentHarness(
            cluster, cluster_name, repo_url, state_dir or tmp_path / f"state-{cluster_name}", dict(overrides)
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.restart()
