"""Loading a fleet repo from disk: find the files, parse and check each, then check across them.

Layout (see fleet-repo-example/README.md): ``clusters/**/*.yaml``, ``groups/**/*.yaml`` and
``bundles/<name>/bundle.yaml``. Every file is read through :class:`~agent.fleet.files.RepoFiles`
(inside the repo, within :mod:`~agent.fleet.limits`). The loader reports every problem it finds
rather than stopping at the first, and keeps track of what each problem breaks, so that the
agent can still apply everything else (the isolation rule, in :mod:`agent.fleet.isolation`).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
from collections.abc import Iterator, Mapping
from typing import Any

from agent.fleet import charts, parsing, rollout, schemacheck, validation
from agent.fleet.errors import FleetRepoError, Problem
from agent.fleet.files import ContentCache, Fact, Refused, RepoFiles
from agent.fleet.limits import DEFAULT, Limits
from agent.fleet.model import Bundle, Cluster, ClusterGroup, FleetRepo
from agent.fleet.yamldoc import Document

BUNDLE_FILE = "bundle.yaml"


@dataclasses.dataclass(frozen=True)
class LoadedFleet:
    """A fleet repo as loaded, problems included.

    ``clusters``, ``groups`` and ``bundles`` hold only what has no problem of its own; the names in
    ``broken_*`` are those declared by files with problems (for bundles, also their directory
    names), or by objects a cross-file problem makes unusable (duplicates, unknown references,
    cycles). ``blocked`` holds sound bundles held back by another file (a broken group they use, a
    broken or blocked dependency), with the reason.
    ``fatal`` means the repo as a whole could not be read: nothing may be applied or pruned.
    """

    clusters: Mapping[str, Cluster]
    groups: Mapping[str, ClusterGroup]
    bundles: Mapping[str, Bundle]
    problems: tuple[Problem, ...]
    broken_clusters: frozenset[str] = frozenset()
    broken_groups: frozenset[str] = frozenset()
    broken_bundles: frozenset[str] = frozenset()
    blocked: Mapping[str, tuple[Bundle, str]] = dataclasses.field(default_factory=dict)
    fatal: bool = False
    limits: Limits = DEFAULT
    settings: rollout.FleetSettings | None = None
    """``fleet.yaml``; None when the repo has none. A problem in it is fatal: its rollout, brake and
    windows steer every bundle, so nothing is applied with guessed ones."""


def load_fleet(
    path: str | os.PathLike[str], *, limits: Limits = DEFAULT, cache: ContentCache | None = None
) -> LoadedFleet:
    """Load everything that can be loaded; ``cache`` (kept by a long-running agent) skips files
    whose content was already parsed."""
    root = os.fspath(path)
    if not os.path.isdir(root):
        return LoadedFleet({}, {}, {}, (Problem(".", 0, f"{root!r} is not a directory"),), fatal=True)
    files = RepoFiles(root, limits, cache)
    collecting = gc.isenabled()
    gc.disable()  # a load allocates ~100 objects per file and frees none: the GC's scans are all waste
    try:
        return _Loader(files).load()
    finally:
        files.cache.finish_load()
        if collecting:
            gc.enable()


def validate_repo(path: str | os.PathLike[str], *, limits: Limits = DEFAULT) -> list[Problem]:
    """Every problem in the fleet repo at ``path``, sorted by file and line; empty when valid."""
    loaded = load_fleet(path, limits=limits)
    problems = list(loaded.problems)
    if not loaded.fatal:
        problems += validation.check_targeting(loaded.bundles, loaded.clusters, loaded.groups, limits)
    return sorted(set(problems))


def load_repo(path: str | os.PathLike[str], *, limits: Limits = DEFAULT) -> FleetRepo:
    """The fleet repo at ``path``; raises ``FleetRepoError`` listing every problem if it is invalid."""
    loaded = load_fleet(path, limits=limits)
    problems = list(loaded.problems)
    if not loaded.fatal:
        problems += validation.check_targeting(loaded.bundles, loaded.clusters, loaded.groups, limits)
    if problems:
        raise FleetRepoError(problems)
    return FleetRepo(
        clusters=loaded.clusters, groups=loaded.groups, bundles=loaded.bundles, settings=loaded.settings
    )


@dataclasses.dataclass(frozen=True)
class _Parsed:
    """One file parsed and schema-checked (what the content cache keeps)."""

    document: Document | None
    problems: tuple[Problem, ...]
    name: str | None


class _Loader:
    def __init__(self, files: RepoFiles) -> None:
        self.files = files
        self.problems: list[Problem] = []
        self.broken: dict[str, set[str]] = {"Cluster": set(), "ClusterGroup": set(), "Bundle": set()}
        self.salvaged_dependencies: dict[str, validation.DependsOn] = {}
        self._charts: dict[str, charts.LocalChart | Problem] = {}
        self._chart_facts: dict[str, list[Fact]] = {}
        self.fatal = False

    def load(self) -> LoadedFleet:
        files = self.files
        settings = self._settings()
        if not files.is_dir("clusters"):
            self.problems.append(Problem("clusters", 0, "no clusters/ directory: is this a fleet repo?"))
        cache = files.cache
        clusters = [
            cache.derived(doc, "ClusterModel", functools.partial(parsing.parse_cluster, doc))
            for doc in self.documents(self._listed("clusters"), "Cluster")
        ]
        groups: list[ClusterGroup] = []
        for document in self.documents(self._listed("groups"), "ClusterGroup"):
            group, problems = cache.derived(
                document, "GroupModel", functools.partial(parsing.parse_group, document)
            )
            self._add(problems, "ClusterGroup", group.name)
            if not problems:
                groups.append(group)
        bundles: list[Bundle] = []
        for document in self.documents(self._bundle_files(), "Bundle"):
            bundle, problems = self._bundle(document)
            self._add(problems, "Bundle", document.data["name"])
            if bundle is None or problems:
                self.salvage(document)
            else:
                bundles.append(bundle)
        if files.over_budget or self.fatal:
            return LoadedFleet({}, {}, {}, tuple(self.problems), fatal=True, limits=files.limits)
        return self._assemble(clusters, groups, bundles, settings)

    def _settings(self) -> rollout.FleetSettings | None:
        if not self.files.exists(rollout.FLEET_FILE):
            return None
        try:
            document = self.files.read(rollout.FLEET_FILE, "Fleet", self.files.yaml_parser)
        except (Refused, OSError) as error:
            message = error.message if isinstance(error, Refused) else f"cannot read file: {error.strerror}"
            document = Problem(rollout.FLEET_FILE, 0, message)
        settings, problems = rollout.fleet_settings(document)
        if problems:
            self.problems.extend(problems)
            self.fatal = True
        return settings

    def _add(self, problems: list[Problem], kind: str, name: str) -> None:
        if problems:
            self.problems.extend(problems)
            self.broken[kind].add(name)

    def _listed(self, folder: str) -> list[str]:
        found, refused = self.files.yaml_files(folder)
        self.problems.extend(Problem(path, 0, why) for path, why in refused)
        return found

    def _bundle_files(self) -> list[str]:
        """``bundles/<name>/bundle.yaml`` of every bundle directory; none when there is no bundles/."""
        directories, refused = self.files.subdirectories("bundles")
        for path, why in refused:
            self.problems.append(Problem(path, 0, why))
            self.broken["Bundle"].add(path.rsplit("/", 1)[-1])
        result = []
        for directory in directories:
            if self.files.regular_file_in(directory, BUNDLE_FILE) is not None:
                result.append(f"{directory}/{BUNDLE_FILE}")
            else:
                self.problems.append(Problem(directory, 0, f"bundle directory has no {BUNDLE_FILE}"))
                self.broken["Bundle"].add(directory.rsplit("/", 1)[-1])
        return result

    def documents(self, paths: list[str], kind: schemacheck.Kind) -> Iterator[Document]:
        """Each file that parses and matches its kind's schema; problems for the others."""
        for path in paths:
            try:
                parsed = self.files.read(path, kind, functools.partial(_parse, kind=kind, files=self.files))
            except Refused as refused:
                parsed = _Parsed(None, (Problem(path, 0, refused.message),), None)
            except OSError as error:
                parsed = _Parsed(None, (Problem(path, 0, f"cannot read file: {error.strerror}"),), None)
            if parsed.problems:
                self.problems.extend(parsed.problems)
                names = {parsed.name} if parsed.name else set()
                if kind == "Bundle":
                    names.add(path.split("/")[1])
                    if parsed.document is not None:
                        self.salvage(parsed.document)
                self.broken[kind].update(names)
                continue
            assert parsed.document is not None
            yield parsed.document

    def salvage(self, document: Document) -> None:
        """Keep a broken bundle's dependsOn, so cycles through it are still found."""
        salvaged = parsing.salvage_dependencies(document)
        if salvaged is not None:
            name, dependencies = salvaged
            self.salvaged_dependencies.setdefault(name, (document.file, dependencies))

    def _bundle(self, document: Document) -> tuple[Bundle | None, list[Problem]]:
        """``parse_bundle``, reused from the last load while the files it read are unchanged."""
        files = self.files
        cached = files.cache.memo(document, "BundleModel")
        if cached is not None:
            facts, result = cached[0]
            if files.still_true(facts):
                files.replay(facts)
                return result  # type: ignore[no-any-return]
        with files.tracing() as facts:
            result = parsing.parse_bundle(document, files, self.read_chart)
        files.cache.remember(document, "BundleModel", (facts, result))
        return result

    def read_chart(self, repo_path: str) -> charts.LocalChart | Problem:
        """Each local chart is read once, however many bundles use it."""
        if repo_path not in self._charts:
            with self.files.tracing() as facts:
                self._charts[repo_path] = charts.read_local_chart(self.files, repo_path)
            self._chart_facts[repo_path] = facts
        else:
            self.files.replay(self._chart_facts[repo_path])
        return self._charts[repo_path]

    def _assemble(
        self,
        clusters: list[Cluster],
        groups: list[ClusterGroup],
        bundles: list[Bundle],
        settings: rollout.FleetSettings | None,
    ) -> LoadedFleet:
        """Cross-file checks. References to files that failed to load are not reported again."""
        broken = self.broken
        problems = self.problems
        clusters_by_name, duplicates = validation.unique_by_name(clusters, "cluster")
        problems += duplicates
        broken["Cluster"].update(_names_of(duplicates, clusters))
        groups_by_name, duplicates = validation.unique_by_name(groups, "cluster group")
        problems += duplicates
        broken["ClusterGroup"].update(_names_of(duplicates, groups))
        bundles_by_name, duplicates = validation.unique_by_name(bundles, "bundle")
        problems += duplicates
        broken["Bundle"].update(_names_of(duplicates, bundles))
        unloaded = broken["Cluster"] | broken["ClusterGroup"] | broken["Bundle"]
        references = validation.check_references(
            bundles_by_name, clusters_by_name, groups_by_name, unloaded=unloaded
        )
        problems += references
        by_file = {bundle.origin.file: name for name, bundle in bundles_by_name.items()}
        broken["Bundle"].update(by_file[p.file] for p in references if p.file in by_file)
        cycles, in_cycles = validation.check_cycles(
            {**self.salvaged_dependencies, **validation.dependencies_of(bundles_by_name)}
        )
        problems += cycles
        broken["Bundle"].update(in_cycles)
        waves = rollout.check_wave_groups_of(settings, bundles_by_name.values(), groups_by_name)
        problems += waves
        broken["Bundle"].update(by_file[p.file] for p in waves if p.file in by_file)
        if any(p.file == rollout.FLEET_FILE for p in waves):
            return LoadedFleet({}, {}, {}, tuple(problems), fatal=True, limits=self.files.limits)
        for name in broken["Cluster"]:
            clusters_by_name.pop(name, None)
        for name in broken["ClusterGroup"]:
            groups_by_name.pop(name, None)
        sound = {
            name: bundle
            for name, bundle in bundles_by_name.items()
            if name not in broken["Bundle"] and not _uses(bundle, broken["ClusterGroup"])
        }
        blocked = _blocked_dependents(sound, bundles_by_name, broken["ClusterGroup"], broken["Bundle"])
        return LoadedFleet(
            clusters=clusters_by_name,
            groups=groups_by_name,
            bundles={name: bundle for name, bundle in sound.items() if name not in blocked},
            blocked={name: (bundles_by_name[name], reason) for name, reason in blocked.items()},
            problems=tuple(problems),
            broken_clusters=frozenset(broken["Cluster"]),
            broken_groups=frozenset(broken["ClusterGroup"]),
            broken_bundles=frozenset(broken["Bundle"]),
            limits=self.files.limits,
            settings=settings,
        )


def _parse(name: str, content: bytes, kind: schemacheck.Kind, files: RepoFiles) -> _Parsed:
    document = files.yaml_parser(name, content)
    if isinstance(document, Problem):
        return _Parsed(None, (document,), None)
    data: Any = document.data
    declared = data.get("name") if isinstance(data, dict) else None
    found = _kind_problem(document, kind) or schemacheck.check(
        document, kind, files.limits.max_problems_per_file
    )
    return _Parsed(document, tuple(found), declared if isinstance(declared, str) else None)


def _names_of(duplicates: list[Problem], items: list[Any]) -> set[str]:
    """The names the duplicate problems are about (the first declaration is unusable too)."""
    at = {(item.origin.file, item.origin.line): item.name for item in items}
    return {at[p.file, p.line] for p in duplicates if (p.file, p.line) in at}


def _uses(bundle: Bundle, groups: frozenset[str] | set[str]) -> bool:
    return any(target.cluster_group in groups for target in bundle.targets)


def _blocked_dependents(
    sound: Mapping[str, Bundle], every: Mapping[str, Bundle], broken_groups: set[str], broken: set[str]
) -> dict[str, str]:
    """Sound bundles that cannot be planned because of another file: a group, or a dependency."""
    blocked: dict[str, str] = {}
    for name, bundle in every.items():
        if name in sound or name in broken or not _uses(bundle, broken_groups):
            continue
        group = next(t.cluster_group for t in bundle.targets if t.cluster_group in broken_groups)
        blocked[name] = f"not applied: its cluster group {group!r} has problems"
    changed = True
    while changed:
        changed = False
        for name, bundle in sound.items():
            if name in blocked:
                continue
            for dependency in bundle.depends_on:
                if dependency.bundle not in sound or dependency.bundle in blocked:
                    blocked[name] = f"not applied: it depends on {dependency.bundle!r}, which has problems"
                    changed = True
                    break
    return blocked


def _kind_problem(document: Document, expected: str) -> list[Problem]:
    data: Any = document.data
    kind = data.get("kind") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind != expected:
        folder = document.file.split("/", 1)[0]
        message = f"a file under {folder}/ must have kind {expected!r}, got {kind[:60]!r}"
        return [Problem(document.file, document.line_of(("kind",)), message)]
    return []
