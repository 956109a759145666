"""Schema-valid documents → model objects, with the checks that concern one file at a time.

Bundles point at files beside them (local charts, values files); those are read here, at the load
boundary, so that the planner never touches the disk.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from agent.fleet import versions
from agent.fleet.charts import CHART_FILE, LocalChart
from agent.fleet.errors import Problem
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
from agent.fleet.yamldoc import Document, Path, parse_document

ChartReader = Callable[[pathlib.Path, str], LocalChart | Problem]
"""Reads a local chart (absolute directory, path relative to the repo root); the loader caches it."""


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
    document: Document, root: pathlib.Path, read_chart: ChartReader
) -> tuple[Bundle | None, list[Problem]]:
    """The bundle in ``document`` (``bundles/<name>/bundle.yaml``), or None if it cannot be built."""
    data: dict[str, Any] = document.data
    problems = _Problems(document)
    bundle_dir = pathlib.PurePosixPath(document.file).parent
    if data["name"] != bundle_dir.name:
        problems.add(("name",), f"bundle name {data['name']!r} must match its directory {bundle_dir.name!r}")
    chart = _chart(data["chart"], bundle_dir, root, read_chart, problems)
    values_files = _values_files(data.get("valuesFiles", []), bundle_dir, root, problems)
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
    root: pathlib.Path,
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
        return _local_chart(data["path"], bundle_dir, root, read_chart, problems)
    required = ("name", "version") if kind == "repo" else ("version",)
    missing = [key for key in required if key not in data]
    for key in missing:
        problems.add(("chart",), f"a chart from '{kind}' needs chart.{key}")
    version = data.get("version")
    if version is not None and not versions.is_valid_constraint(version):
        problems.add(
            ("chart", "version"),
            f"chart.version {version!r} is neither a version nor a semver range "
            "(e.g. 1.2.3, ^1.2, >=1.0 <2.0)",
        )
        return None
    if missing:
        return None
    if kind == "repo":
        return ChartSource(kind="repo", repo_url=data["repo"], name=data["name"], version=version)
    return ChartSource(kind="oci", oci_ref=data["oci"], version=version)


def _inside_repo(
    relative: str, bundle_dir: pathlib.PurePosixPath, root: pathlib.Path
) -> tuple[str, pathlib.Path] | None:
    """(path relative to the repo root, absolute path) for a path written in a bundle, or None if
    it leads outside the repo or is not a usable path."""
    try:
        resolved_root = root.resolve()
        absolute = (root / bundle_dir / relative).resolve()
    except (OSError, ValueError):  # a symlink loop, a NUL byte: not a path we can use
        return None
    if not absolute.is_relative_to(resolved_root):
        return None
    return absolute.relative_to(resolved_root).as_posix(), absolute


def _local_chart(
    relative: str,
    bundle_dir: pathlib.PurePosixPath,
    root: pathlib.Path,
    read_chart: ChartReader,
    problems: _Problems,
) -> ChartSource | None:
    located = _inside_repo(relative, bundle_dir, root)
    if located is None:
        problems.add(("chart", "path"), f"chart.path {relative!r} is not a path inside the fleet repo")
        return None
    repo_path, absolute = located
    if not absolute.is_dir():
        problems.add(("chart", "path"), f"chart.path {relative!r}: no such directory ({repo_path})")
        return None
    if not (absolute / CHART_FILE).is_file():
        problems.add(("chart", "path"), f"chart.path {relative!r}: {repo_path} has no {CHART_FILE}")
        return None
    chart = read_chart(absolute, repo_path)
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
    entries: list[str], bundle_dir: pathlib.PurePosixPath, root: pathlib.Path, problems: _Problems
) -> tuple[ValuesFile, ...] | None:
    result = []
    for index, relative in enumerate(entries):
        here = ("valuesFiles", index)
        located = _inside_repo(relative, bundle_dir, root)
        if located is None:
            problems.add(here, f"values file {relative!r} is not a path inside the fleet repo")
            continue
        repo_path, absolute = located
        try:
            text = absolute.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.add(here, f"values file {relative!r}: no such file ({repo_path})")
            continue
        except (OSError, UnicodeDecodeError) as error:
            problems.add(here, f"values file {relative!r} cannot be read: {error}")
            continue
        parsed = parse_document(repo_path, text)
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
