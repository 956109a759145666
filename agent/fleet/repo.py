"""Loading a fleet repo from disk: find the files, parse and check each, then check across them.

Layout (see fleet-repo-example/README.md): ``clusters/**/*.yaml``, ``groups/**/*.yaml`` and
``bundles/<name>/bundle.yaml``. This is the only module of the package that lists directories;
it reports every problem it finds rather than stopping at the first.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from typing import Any

from agent.fleet import charts, parsing, rollout, schemacheck, validation
from agent.fleet.errors import FleetRepoError, Problem
from agent.fleet.model import Bundle, Cluster, ClusterGroup, FleetRepo
from agent.fleet.yamldoc import Document, parse_document

_YAML_SUFFIXES = (".yaml", ".yml")
BUNDLE_FILE = "bundle.yaml"


def load_repo(path: str | os.PathLike[str]) -> FleetRepo:
    """The fleet repo at ``path``; raises ``FleetRepoError`` listing every problem if it is invalid."""
    repo, problems = _load(pathlib.Path(path))
    if problems or repo is None:
        raise FleetRepoError(problems)
    return repo


def validate_repo(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem in the fleet repo at ``path``, sorted by file and line; empty when valid."""
    return sorted(set(_load(pathlib.Path(path))[1]))


class _Loader:
    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.broken_names: set[str] = set()
        self.salvaged_dependencies: dict[str, validation.DependsOn] = {}
        self._charts: dict[pathlib.Path, charts.LocalChart | Problem] = {}

    def documents(self, files: list[str], kind: schemacheck.Kind) -> Iterator[Document]:
        """Each file that parses and matches its kind's schema; problems for the others."""
        for file in files:
            document = self._parse(file)
            if document is None:
                continue
            found = _kind_problem(document, kind) or schemacheck.check(document, kind)
            if found:
                self.problems.extend(found)
                name = document.data.get("name") if isinstance(document.data, dict) else None
                if isinstance(name, str):
                    self.broken_names.add(name)
                if kind == "Bundle":
                    self.salvage(document)
                continue
            yield document

    def salvage(self, document: Document) -> None:
        """Keep a broken bundle's dependsOn, so cycles through it are still found."""
        salvaged = parsing.salvage_dependencies(document)
        if salvaged is not None:
            name, dependencies = salvaged
            self.salvaged_dependencies.setdefault(name, (document.file, dependencies))

    def read_chart(self, chart_dir: pathlib.Path, repo_path: str) -> charts.LocalChart | Problem:
        """Each local chart is read once, however many bundles use it."""
        if chart_dir not in self._charts:
            self._charts[chart_dir] = charts.read_local_chart(chart_dir, repo_path)
        return self._charts[chart_dir]

    def _parse(self, file: str) -> Document | None:
        try:
            text = (self.root / file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.problems.append(Problem(file, 0, f"cannot read file: {error}"))
            return None
        parsed = parse_document(file, text)
        if isinstance(parsed, Problem):
            self.problems.append(parsed)
            return None
        return parsed


def _load(root: pathlib.Path) -> tuple[FleetRepo | None, list[Problem]]:
    if not root.is_dir():
        return None, [Problem(".", 0, f"{os.fspath(root)!r} is not a directory")]
    loader = _Loader(root)
    settings, found = rollout.load_fleet_settings(root)
    loader.problems.extend(found)
    for required in ("clusters", "bundles"):
        if not (root / required).is_dir():
            loader.problems.append(Problem(required, 0, f"no {required}/ directory: is this a fleet repo?"))

    clusters = [
        parsing.parse_cluster(doc) for doc in loader.documents(_yaml_files(root, "clusters"), "Cluster")
    ]
    groups: list[ClusterGroup] = []
    for document in loader.documents(_yaml_files(root, "groups"), "ClusterGroup"):
        group, problems = parsing.parse_group(document)
        loader.problems.extend(problems)
        groups.append(group)
    bundle_files, missing = _bundle_files(root)
    loader.problems.extend(missing)
    bundles: list[Bundle] = []
    for document in loader.documents(bundle_files, "Bundle"):
        bundle, problems = parsing.parse_bundle(document, root, loader.read_chart)
        loader.problems.extend(problems)
        if bundle is None:
            loader.broken_names.add(document.data["name"])
            loader.salvage(document)
        else:
            bundles.append(bundle)
    return _assemble(loader, clusters, groups, bundles, settings)


def _assemble(
    loader: _Loader,
    clusters: list[Cluster],
    groups: list[ClusterGroup],
    bundles: list[Bundle],
    settings: rollout.FleetSettings | None = None,
) -> tuple[FleetRepo | None, list[Problem]]:
    """Cross-file checks. References to files that failed to load are not reported again, and the
    per-cluster targeting checks run only once every file is sound, so one typo gives one problem."""
    problems = loader.problems
    clusters_by_name, duplicates = validation.unique_by_name(clusters, "cluster")
    problems += duplicates
    groups_by_name, duplicates = validation.unique_by_name(groups, "cluster group")
    problems += duplicates
    bundles_by_name, duplicates = validation.unique_by_name(bundles, "bundle")
    problems += duplicates
    problems += validation.check_references(
        bundles_by_name, clusters_by_name, groups_by_name, unloaded=loader.broken_names
    )
    problems += validation.check_cycles(
        {**loader.salvaged_dependencies, **validation.dependencies_of(bundles_by_name)}
    )
    problems += rollout.check_wave_groups_of(settings, bundles_by_name.values(), groups_by_name)
    if problems:
        return None, problems
    problems += validation.check_targeting(bundles_by_name, clusters_by_name, groups_by_name)
    if problems:
        return None, problems
    repo = FleetRepo(
        clusters=clusters_by_name, groups=groups_by_name, bundles=bundles_by_name, settings=settings
    )
    return repo, []


def _kind_problem(document: Document, expected: str) -> list[Problem]:
    data: Any = document.data
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind != expected:
        folder = document.file.split("/", 1)[0]
        message = f"a file under {folder}/ must have kind {expected!r}, got {kind!r}"
        return [Problem(document.file, document.line_of(("kind",)), message)]
    return []


def _yaml_files(root: pathlib.Path, folder: str) -> list[str]:
    base = root / folder
    if not base.is_dir():
        return []
    return sorted(
        path.relative_to(root).as_posix()
        for path in base.rglob("*")
        if path.suffix in _YAML_SUFFIXES and path.is_file()
    )


def _bundle_files(root: pathlib.Path) -> tuple[list[str], list[Problem]]:
    base = root / "bundles"
    if not base.is_dir():
        return [], []
    files, problems = [], []
    for directory in sorted(path for path in base.iterdir() if path.is_dir()):
        relative = directory.relative_to(root).as_posix()
        if (directory / BUNDLE_FILE).is_file():
            files.append(f"{relative}/{BUNDLE_FILE}")
        else:
            problems.append(Problem(relative, 0, f"bundle directory has no {BUNDLE_FILE}"))
    return files, problems
