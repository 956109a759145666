"""Schema-valid documents → model objects, with the checks that concern one file at a time.

Bundles point at files beside them (local charts, values files); those are read here, at the load
boundary, so that the planner never touches the disk.
"""

from __future__ import annotations

import pathlib
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from agent.fleet import rollout, versions
from agent.fleet.charts import CHART_FILE, LocalChart
from agent.fleet.errors import Problem, excerpt
from agent.fleet.files import Refused, RepoFiles
from agent.fleet.model import (
    Bundle,
    ChartSource,
    Cluster,
    ClusterGroup,
    Dependency,
    HelmOptions,
    LabelSelector,
    Origin,
    Requirement,
    Target,
    ValuesFile,
    ValuesRef,
)
from agent.fleet.yamldoc import Document, Path

ChartReader = Callable[[str], LocalChart | Problem]
"""Reads a local chart (its path relative to the repo root); the loader caches it."""


class _Problems:
    """Collects the problems of one document, each on the line of the path it concerns."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.found: list[Problem] = []

    def add(self, path: Path, message: str) -> None:
        self.found.append(Problem(self.document.file, self.document.line_of(path), message))


def parse_cluster(document: Document) -> Cluster:
    data = document.data
    return Cluster(
        name=data["name"], labels=dict(data.get("labels", {})), origin=_origin(document, ("name",))
    )


def parse_group(document: Document) -> tuple[ClusterGroup, list[Problem]]:
    problems = _Problems(document)
    selector = _selector(document.data["selector"], ("selector",), problems)
    group = ClusterGroup(name=document.data["name"], selector=selector, origin=_origin(document, ("name",)))
    return group, problems.found


def parse_bundle(
    document: Document, files: RepoFiles, read_chart: ChartReader
) -> tuple[Bundle | None, list[Problem]]:
    """The bundle in ``document`` (``bundles/<name>/bundle.yaml``), or None if it cannot be built."""
    data: dict[str, Any] = document.data
    problems = _Problems(document)
    bundle_dir = pathlib.PurePosixPath(document.file).parent
    if data["name"] != bundle_dir.name:
        problems.add(("name",), f"bundle name {data['name']!r} must match its directory {bundle_dir.name!r}")
    chart = _chart(data["chart"], bundle_dir, files, read_chart, problems)
    values_files = _values_files(data.get("valuesFiles", []), bundle_dir, files, problems)
    targets = tuple(
        _target(entry, ("targets", i), problems) for i, entry in enumerate(data.get("targets", []))
    )
    depends_on = _dependencies(data, document, problems)
    helm = data.get("helm", {})
    defaults = HelmOptions()
    options = HelmOptions(
        timeout_seconds=helm.get("timeoutSeconds", defaults.timeout_seconds),
        wait=helm.get("wait", defaults.wait),
        max_history=helm.get("maxHistory", defaults.max_history),
    )
    staged = None
    if "rollout" in data:
        staged, found = rollout.parse_rollout(document, ("rollout",))
        problems.found.extend(found)
    if chart is None or values_files is None:
        return None, problems.found
    bundle = Bundle(
        name=data["name"],
        release=data.get("releaseName", data["name"]),
        namespace=data["namespace"],
        chart=chart,
        origin=_origin(document, ("name",)),
        values=data.get("values", {}),
        values_files=values_files,
        values_from=tuple(_values_ref(entry) for entry in data.get("valuesFrom", [])),
        targets=targets,
        depends_on=depends_on,
        paused=data.get("paused", False),
        correct_drift=data.get("correctDrift", True),
        options=options,
        rollout=staged,
    )
    return bundle, problems.found


def salvage_dependencies(document: Document) -> tuple[str, tuple[Dependency, ...]] | None:
    """Name and dependsOn of a bundle file that has other problems, when those two are readable."""
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    entries = data.get("dependsOn", [])
    if not isinstance(entries, list):
        return None
    dependencies = tuple(
        Dependency(bundle=entry, line=document.line_of(("dependsOn", index)))
        for index, entry in enumerate(entries)
        if isinstance(entry, str)
    )
    return data["name"], dependencies


def _origin(document: Document, path: Path) -> Origin:
    return Origin(document.file, document.line_of(path))


def _selector(data: Mapping[str, Any], path: Path, problems: _Problems) -> LabelSelector:
    expressions = []
    for index, entry in enumerate(data.get("matchExpressions", [])):
        operator, values = entry["operator"], tuple(entry.get("values", []))
        here = (*path, "matchExpressions", index)
        if operator in ("In", "NotIn") and not values:
            problems.add(here, f"operator {operator} needs a non-empty 'values' list")
        if operator in ("Exists", "DoesNotExist") and values:
            problems.add((*here, "values"), f"operator {operator} takes no 'values'")
        expressions.append(Requirement(key=entry["key"], operator=operator, values=values))
    return LabelSelector(match_labels=dict(data.get("matchLabels", {})), match_expressions=tuple(expressions))


def _target(data: Mapping[str, Any], path: Path, problems: _Problems) -> Target:
    if not {"clusterName", "clusterSelector", "clusterGroup"} & set(data):
        problems.add(
            path,
            "a target needs clusterName, clusterSelector or clusterGroup "
            "(use 'clusterSelector: {}' to target every cluster)",
        )
    selector = data.get("clusterSelector")
    return Target(
        line=problems.document.line_of(path),
        name=data.get("name"),
        cluster_name=data.get("clusterName"),
        cluster_selector=None
        if selector is None
        else _selector(selector, (*path, "clusterSelector"), problems),
        cluster_group=data.get("clusterGroup"),
        group_line=problems.document.line_of((*path, "clusterGroup")),
        values=data.get("values", {}),
    )


def _dependencies(data: Mapping[str, Any], document: Document, problems: _Problems) -> tuple[Dependency, ...]:
    seen: set[str] = set()
    result = []
    for index, name in enumerate(data.get("dependsOn", [])):
        if name in seen:
            problems.add(("dependsOn", index), f"dependsOn lists {name!r} twice")
            continue
        seen.add(name)
        result.append(Dependency(bundle=name, line=document.line_of(("dependsOn", index))))
    return tuple(result)


def _values_ref(data: Mapping[str, Any]) -> ValuesRef:
    return ValuesRef(
        kind=data["kind"],
        name=data["name"],
        namespace=data.get("namespace"),
        key=data.get("key", "values.yaml"),
        optional=data.get("optional", False),
    )


def _chart(
    data: Mapping[str, Any],
    bundle_dir: pathlib.PurePosixPath,
    files: RepoFiles,
    read_chart: ChartReader,
    problems: _Problems,
) -> ChartSource | None:
    sources = [key for key in ("path", "repo", "oci") if key in data]
    if len(sources) != 1:
        found = " and ".join(sources) if sources else "none"
        problems.add(("chart",), f"chart needs exactly one of 'path', 'repo' or 'oci' (found {found})")
        return None
    kind = sources[0]
    allowed = {"path": {"path"}, "repo": {"repo", "name", "version"}, "oci": {"oci", "version"}}[kind]
    for extra in sorted(set(data) - allowed):
        problems.add(("chart", extra), f"chart.{extra} does not apply to a chart from '{kind}'")
    if kind == "path":
        return _local_chart(data["path"], bundle_dir, files, read_chart, problems)
    required = ("name", "version") if kind == "repo" else ("version",)
    missing = [key for key in required if key not in data]
    for key in missing:
        problems.add(("chart",), f"a chart from '{kind}' needs chart.{key}")
    version = data.get("version")
    if version is not None and not versions.is_valid_constraint(version):
        problems.add(
            ("chart", "version"),
            f"chart.version {excerpt(str(version))} is neither a version nor a semver range "
            "(e.g. 1.2.3, ^1.2, >=1.0 <2.0)",
        )
        return None
    if missing:
        return None
    if kind == "repo":
        return ChartSource(kind="repo", repo_url=data["repo"], name=data["name"], version=version)
    return ChartSource(kind="oci", oci_ref=data["oci"], version=version)


def _inside_repo(relative: str, bundle_dir: pathlib.PurePosixPath, files: RepoFiles) -> str:
    """The path relative to the repo root of a path written in a bundle; raises ``Refused`` if it
    leads outside the repo, lexically or through a symlink, or is not a usable path."""
    lexical = posixpath.normpath(posixpath.join(str(bundle_dir), relative))
    if relative.startswith("/") or lexical == ".." or lexical.startswith("../") or "\0" in relative:
        raise Refused("is not a path inside the fleet repo")
    try:
        return files.locate(lexical)[0]
    except Refused as refused:
        if refused.missing:  # the callers say what is missing, and where
            return lexical
        raise


def _local_chart(
    relative: str,
    bundle_dir: pathlib.PurePosixPath,
    files: RepoFiles,
    read_chart: ChartReader,
    problems: _Problems,
) -> ChartSource | None:
    shown = excerpt(relative)
    try:
        repo_path = _inside_repo(relative, bundle_dir, files)
    except Refused as refused:
        problems.add(("chart", "path"), f"chart.path {shown} {refused.message}")
        return None
    if not files.is_dir(repo_path):
        problems.add(("chart", "path"), f"chart.path {shown}: no such directory ({repo_path})")
        return None
    if not files.exists(f"{repo_path}/{CHART_FILE}"):
        problems.add(("chart", "path"), f"chart.path {shown}: {repo_path} has no {CHART_FILE}")
        return None
    chart = read_chart(repo_path)
    if isinstance(chart, Problem):
        problems.found.append(chart)
        return None
    return ChartSource(
        kind="path", path=repo_path, version=chart.version, content_digest=chart.content_digest
    )


def is_sops_document(data: Mapping[str, Any]) -> bool:
    """A SOPS-encrypted file: a top-level ``sops`` mapping carrying its MAC."""
    metadata = data.get("sops")
    return isinstance(metadata, dict) and "mac" in metadata


def _values_files(
    entries: list[str], bundle_dir: pathlib.PurePosixPath, files: RepoFiles, problems: _Problems
) -> tuple[ValuesFile, ...] | None:
    result = []
    for index, relative in enumerate(entries):
        here = ("valuesFiles", index)
        shown = excerpt(relative)
        repo_path = relative
        try:
            repo_path = _inside_repo(relative, bundle_dir, files)
            parsed = files.read(repo_path, "Values", files.yaml_parser)
        except Refused as refused:
            if refused.missing:
                problems.add(here, f"values file {shown}: no such file ({repo_path})")
            else:
                problems.add(here, f"values file {shown} {refused.message}")
            continue
        except OSError as error:
            problems.add(here, f"values file {shown} cannot be read: {error.strerror}")
            continue
        if isinstance(parsed, Problem):
            problems.found.append(parsed)
        elif not isinstance(parsed.data, dict):
            problems.found.append(Problem(repo_path, 1, "a values file must be a YAML mapping"))
        elif is_sops_document(parsed.data):
            clear = {key: value for key, value in parsed.data.items() if key != "sops"}
            result.append(ValuesFile(path=repo_path, values=clear, encrypted=True))
        else:
            result.append(ValuesFile(path=repo_path, values=parsed.data))
    if len(result) != len(entries):
        return None
    return tuple(result)
