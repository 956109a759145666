"""Fixtures of the supply-chain tests: the agent harness and a real OCI registry."""

from tests.fixtures.registry import registry_factory
from tests.integration.agent.conftest import fleet_repo_factory, harness_factory, unique

__all__ = ["fleet_repo_factory", "harness_factory", "registry_factory", "unique"]
