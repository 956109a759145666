"""The fleet repo: its format, loading and validation, and the pure planner.

Public API (what the agent and the CLI use)::

    repo = fleet.load_repo(path)                  # raises fleet.FleetRepoError(problems)
    problems = fleet.validate_repo(path)          # sorted list of fleet.Problem(file, line, message)
    loaded = fleet.load_fleet(path, cache=cache)  # what loads, with its problems (never raises)
    agent_plan = fleet.plan_agent(loaded, name)   # what one cluster applies despite problems elsewhere
    plan = fleet.plan_cluster(repo, "eu-west-dublin-1")   # raises fleet.UnknownClusterError
    values = fleet.deep_merge(plan.releases[0].values, from_secret)   # Helm's merge rules

The format is documented in fleet-repo-example/README.md; the JSON Schemas are in ``schemas/``.
"""

from agent.fleet.errors import FleetRepoError, Problem, UnknownClusterError
from agent.fleet.files import ContentCache
from agent.fleet.isolation import AgentPlan, BlockedRelease, plan_agent
from agent.fleet.limits import Limits
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
from agent.fleet.repo import LoadedFleet, load_fleet, load_repo, validate_repo

__all__ = [
    "API_VERSION",
    "AgentPlan",
    "BlockedRelease",
    "Bundle",
    "ChartSource",
    "Cluster",
    "ClusterGroup",
    "ClusterPlan",
    "ContentCache",
    "DesiredRelease",
    "FleetRepo",
    "FleetRepoError",
    "HelmOptions",
    "LabelSelector",
    "Limits",
    "LoadedFleet",
    "Problem",
    "Requirement",
    "Target",
    "UnknownClusterError",
    "ValuesRef",
    "deep_merge",
    "load_fleet",
    "load_repo",
    "merge_values",
    "plan_agent",
    "plan_cluster",
    "validate_repo",
]
