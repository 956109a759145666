"""The parsed fleet repo and the plan for one cluster, as frozen plain data.

Loading turns YAML files into these objects; the planner is a pure function over them.
Line numbers are kept on the objects that cross-file checks need to point at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

API_VERSION = "flotilla.dev/v1alpha1"

JSONValue = Any
"""A JSON-compatible value: dict with str keys, list, str, int, float, bool or None."""

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
ChartKind = Literal["path", "repo", "oci"]
ValuesRefKind = Literal["Secret", "ConfigMap"]


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where an object was declared: file relative to the repo root and 1-based line."""

    file: str
    line: int


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry of a label selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """Kubernetes label selector semantics: every label and every expression must hold.

    The empty selector matches every cluster.
    """

    match_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    match_expressions: tuple[Requirement, ...] = ()


@dataclasses.dataclass(frozen=True)
class Cluster:
    name: str
    labels: Mapping[str, str]
    origin: Origin


@dataclasses.dataclass(frozen=True)
class ClusterGroup:
    name: str
    selector: LabelSelector
    origin: Origin


@dataclasses.dataclass(frozen=True)
class Target:
    """One entry of a bundle's ``targets``: all the fields it sets must match (AND)."""

    line: int
    cluster_name: str | None = None
    cluster_selector: LabelSelector | None = None
    cluster_group: str | None = None
    group_line: int = 0
    values: Mapping[str, JSONValue] = dataclasses.field(default_factory=dict)
    name: str | None = None


@dataclasses.dataclass(frozen=True)
class ChartSource:
    """Where a release's chart comes from.

    ``path`` is relative to the repo root; ``content_digest`` is the sha256 of a local chart's
    files, computed at load time so that planning needs no I/O.
    """

    kind: ChartKind
    path: str | None = None
    repo_url: str | None = None
    name: str | None = None
    version: str | None = None
    oci_ref: str | None = None
    content_digest: str | None = None


@dataclasses.dataclass(frozen=True)
class ValuesRef:
    """Values read at the edge from a Secret or ConfigMap; ``namespace`` None is the release's."""

    kind: ValuesRefKind
    name: str
    namespace: str | None = None
    key: str = "values.yaml"
    optional: bool = False


@dataclasses.dataclass(frozen=True)
class HelmOptions:
    timeout_seconds: int = 300
    wait: bool = True
    max_history: int = 5


@dataclasses.dataclass(frozen=True)
class ValuesFile:
    """A ``valuesFiles`` entry: its path relative to the repo root and its parsed content."""

    path: str
    values: Mapping[str, JSONValue]
    encrypted: bool = False
    """SOPS-encrypted: ``values`` is the ciphertext tree (``ENC[...]`` leaves, no ``sops`` key),
    decrypted only at the edge, only when the release is installed or upgraded."""


@dataclasses.dataclass(frozen=True)
class Dependency:
    """A ``dependsOn`` entry and the line it is on."""

    bundle: str
    line: int


@dataclasses.dataclass(frozen=True)
class Bundle:
    name: str
    release: str
    namespace: str
    chart: ChartSource
    origin: Origin
    values: Mapping[str, JSONValue] = dataclasses.field(default_factory=dict)
    values_files: tuple[ValuesFile, ...] = ()
    values_from: tuple[ValuesRef, ...] = ()
    targets: tuple[Target, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    paused: bool = False
    correct_drift: bool = True
    options: HelmOptions = dataclasses.field(default_factory=HelmOptions)


@dataclasses.dataclass(frozen=True)
class FleetRepo:
    """A whole valid fleet repo. Mappings are keyed by name and iterate in name order."""

    clusters: Mapping[str, Cluster]
    groups: Mapping[str, ClusterGroup]
    bundles: Mapping[str, Bundle]


@dataclasses.dataclass(frozen=True)
class DesiredRelease:
    """What one bundle should look like as a Helm release on one cluster."""

    bundle: str
    release: str
    namespace: str
    chart: ChartSource
    values: dict[str, JSONValue]
    """Fully merged, without valuesFrom (read and merged last by the agent at the edge)."""
    values_from: tuple[ValuesRef, ...]
    depends_on: tuple[str, ...]
    """Bundle names, only those also planned for this cluster."""
    paused: bool
    correct_drift: bool
    options: HelmOptions
    digest: str
    encrypted_files: tuple[str, ...] = ()
    """Repo paths of SOPS-encrypted values files merged into ``values`` (as ciphertext)."""


@dataclasses.dataclass(frozen=True)
class ClusterPlan:
    """Every release one cluster should run, dependencies before their dependents."""

    cluster: Cluster
    releases: tuple[DesiredRelease, ...]
