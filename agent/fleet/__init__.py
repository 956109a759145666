"""The fleet repo: its format, loading and validation, and the pure planner.

Public API (what the agent and the CLI use)::

    repo = fleet.load_repo(path)                  # raises fleet.FleetRepoError(problems)
    problems = fleet.validate_repo(path)          # sorted list of fleet.Problem(file, line, message)
    plan = fleet.plan_cluster(repo, "eu-west-dublin-1")   # raises fleet.UnknownClusterError
    values = fleet.deep_merge(plan.releases[0].values, from_secret)   # Helm's merge rules

The format is documented in fleet-repo-example/README.md; the JSON Schemas are in ``schemas/``.
"""

from agent.fleet.errors import FleetRepoError, Problem, UnknownClusterError
from agent.fleet.merge import deep_merge, merge_values
from agent.fleet.model import (
    API_VERSION,
    Bundle,
    ChartSource,
    Cluster,
    ClusterGroup,
    ClusterPlan,
    DesiredRelease,
    FleetRepo,
    HelmOptions,
    LabelSelector,
    Requirement,
    Target,
    ValuesRef,
)
from agent.fleet.planning import plan_cluster
from agent.fleet.repo import load_repo, validate_repo

__all__ = [
    "API_VERSION",
    "Bundle",
    "ChartSource",
    "Cluster",
    "ClusterGroup",
    "ClusterPlan",
    "DesiredRelease",
    "FleetRepo",
    "FleetRepoError",
    "HelmOptions",
    "LabelSelector",
    "Problem",
    "Requirement",
    "Target",
    "UnknownClusterError",
    "ValuesRef",
    "deep_merge",
    "load_repo",
    "merge_values",
    "plan_cluster",
    "validate_repo",
]
