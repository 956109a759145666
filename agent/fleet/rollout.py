"""Staged rollouts and the deletion brake as declared in the fleet repo: model, parsing, wave of a cluster.

A bundle's ``rollout`` (or, when it has none, the ``rollout`` of ``fleet.yaml`` at the repo root)
lists ordered waves.  A cluster belongs to the first wave whose selector matches it; clusters that
match none form an implicit last wave named ``rest``.  The semantics of the numbers (what the hub
gates on) are in fleet-repo-example/README.md, "Staged rollouts".  Pure except for
:func:`load_fleet_settings`, which reads ``fleet.yaml``.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from agent.fleet import schemacheck, windows
from agent.fleet.errors import Problem
from agent.fleet.model import (
    Bundle,
    Cluster,
    ClusterGroup,
    FleetRepo,
    LabelSelector,
    Requirement,
    WavePosition,
)
from agent.fleet.selectors import fields_match, matching_targets
from agent.fleet.yamldoc import Document, Path, parse_document

FLEET_FILE = "fleet.yaml"
REST_WAVE = "rest"
DEFAULT_DEADLINE_SECONDS = 3600
DEFAULT_BRAKE_MAX_RELEASES = 10
DEFAULT_BRAKE_MAX_PERCENT = 50
MAX_WAVES = 20
MAX_LISTED = 10_000  # clusterNames of a wave, confirmations of the brake
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


@dataclasses.dataclass(frozen=True)
class Amount:
    """A count of clusters, or a percentage of a wave's clusters (rounded down, at least 1 for a slot)."""

    value: int
    percent: bool = False

    def of(self, total: int) -> int:
        return self.value * total // 100 if self.percent else self.value

    def to_json(self) -> int | str:
        return f"{self.value}%" if self.percent else self.value


@dataclasses.dataclass(frozen=True)
class Wave:
    name: str
    cluster_names: tuple[str, ...] | None = None
    selector: LabelSelector | None = None
    group: str | None = None
    max_concurrent: Amount | None = None  # None: no limit
    max_failed: Amount = Amount(0)
    bake_seconds: int = 0
    deadline_seconds: int = DEFAULT_DEADLINE_SECONDS
    line: int = 0

    def matches(self, cluster: Cluster, groups: Mapping[str, ClusterGroup]) -> bool:
        """Every selector field the wave sets must match (AND), like a target; the rest wave matches all."""
        return fields_match(
            cluster, groups, names=self.cluster_names, selector=self.selector, group=self.group
        )

    def to_json(self) -> dict[str, Any]:
        """The numbers the hub gates on (selectors stay in the repo: each agent reports its own wave)."""
        return {
            "name": self.name,
            "max_concurrent": None if self.max_concurrent is None else self.max_concurrent.to_json(),
            "max_failed": self.max_failed.to_json(),
            "bake_seconds": self.bake_seconds,
            "deadline_seconds": self.deadline_seconds,
        }


@dataclasses.dataclass(frozen=True)
class RolloutSpec:
    """The declared waves, without the implicit ``rest`` wave (see :meth:`all_waves`)."""

    waves: tuple[Wave, ...] = ()
    paused: bool = False
    origin: str = ""  # the file it was declared in

    @property
    def staged(self) -> bool:
        return bool(self.waves)

    def all_waves(self) -> tuple[Wave, ...]:
        last = self.waves[-1] if self.waves else Wave(REST_WAVE)
        rest = dataclasses.replace(last, name=REST_WAVE, cluster_names=None, selector=None, group=None)
        return (*self.waves, rest)

    def wave_of(self, cluster: Cluster, groups: Mapping[str, ClusterGroup]) -> tuple[int, Wave]:
        """(1-based index, wave) of the first wave that matches ``cluster``; the rest wave otherwise.

        The rest wave takes the numbers (bake, budget, deadline, concurrency) of the last declared one.
        """
        waves = self.all_waves()
        for index, wave in enumerate(waves[:-1], start=1):
            if wave.matches(cluster, groups):
                return index, wave
        return len(waves), waves[-1]


@dataclasses.dataclass(frozen=True)
class DeletionBrake:
    max_releases: int = DEFAULT_BRAKE_MAX_RELEASES
    max_percent: int = DEFAULT_BRAKE_MAX_PERCENT
    confirmed: frozenset[str] = frozenset()  # "<cluster>:<prune id>"


@dataclasses.dataclass(frozen=True)
class FleetSettings:
    """``fleet.yaml``: repo-wide defaults.  Absent file: no staging, the default brake."""

    rollout: RolloutSpec = RolloutSpec()
    brake: DeletionBrake = DeletionBrake()
    windows: tuple[windows.Window, ...] = ()


def parse_rollout(document: Document, path: Path) -> tuple[RolloutSpec, list[Problem]]:
    """The ``rollout`` mapping at ``path`` of a schema-valid document, with cross-field checks."""
    data: Mapping[str, Any] = _at(document.data, path)
    problems: list[Problem] = []

    def add(where: Path, message: str) -> None:
        problems.append(Problem(document.file, document.line_of(where), message))

    waves = []
    seen: set[str] = set()
    declared = data.get("waves", [])
    if len(declared) > MAX_WAVES:
        add((*path, "waves"), f"at most {MAX_WAVES} waves, got {len(declared)}")
        declared = declared[:MAX_WAVES]
    for index, raw in enumerate(declared):
        here = (*path, "waves", index)
        name = raw["name"]
        if name == REST_WAVE:
            add((*here, "name"), f"wave name {REST_WAVE!r} is reserved for the implicit last wave")
        if name in seen:
            add((*here, "name"), f"two waves are named {name!r}")
        seen.add(name)
        if len(raw.get("clusterNames", [])) > MAX_LISTED:
            add((*here, "clusterNames"), f"at most {MAX_LISTED} cluster names per wave")
        if not {"clusterNames", "clusterSelector", "clusterGroup"} & set(raw):
            add(here, f"wave {name!r} needs clusterNames, clusterSelector or clusterGroup")
        selector = raw.get("clusterSelector")
        waves.append(
            Wave(
                name=name,
                cluster_names=tuple(raw["clusterNames"]) if "clusterNames" in raw else None,
                selector=None if selector is None else _selector(selector),
                group=raw.get("clusterGroup"),
                max_concurrent=_amount(raw, "maxConcurrent", here, add, minimum=1),
                max_failed=_amount(raw, "maxFailed", here, add, minimum=0) or Amount(0),
                bake_seconds=raw.get("bakeSeconds", 0),
                deadline_seconds=raw.get("deadlineSeconds", DEFAULT_DEADLINE_SECONDS),
                line=document.line_of(here),
            )
        )
    return RolloutSpec(tuple(waves), bool(data.get("paused", False)), document.file), problems


def check_wave_groups(spec: RolloutSpec, groups: Mapping[str, ClusterGroup]) -> list[Problem]:
    """A wave naming a group that does not exist."""
    return [
        Problem(spec.origin, wave.line, f"wave {wave.name!r}: no cluster group named {wave.group!r}")
        for wave in spec.waves
        if wave.group is not None and wave.group not in groups
    ]


def load_fleet_settings(root: pathlib.Path) -> tuple[FleetSettings, list[Problem]]:
    """``fleet.yaml`` at the repo root, or the defaults when there is none."""
    file = root / FLEET_FILE
    if not file.is_file():
        return FleetSettings(), []
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return FleetSettings(), [Problem(FLEET_FILE, 0, f"cannot read file: {error}")]
    return fleet_settings(parse_document(FLEET_FILE, text))


def fleet_settings(document: Document | Problem) -> tuple[FleetSettings, list[Problem]]:
    """The settings in a parsed ``fleet.yaml`` (the loader reads it within its limits)."""
    if isinstance(document, Problem):
        return FleetSettings(), [document]
    problems = schemacheck.check(document, "Fleet")
    if problems:
        return FleetSettings(), problems
    rollout, problems = (
        parse_rollout(document, ("rollout",))
        if "rollout" in document.data
        else (
            RolloutSpec(),
            [],
        )
    )
    raw_brake = document.data.get("deletionBrake", {})
    if len(raw_brake.get("confirm", [])) > MAX_LISTED:
        problems.append(
            Problem(
                FLEET_FILE,
                document.line_of(("deletionBrake", "confirm")),
                f"at most {MAX_LISTED} confirmations",
            )
        )
    brake = DeletionBrake(
        max_releases=raw_brake.get("maxReleases", DEFAULT_BRAKE_MAX_RELEASES),
        max_percent=raw_brake.get("maxPercent", DEFAULT_BRAKE_MAX_PERCENT),
        confirmed=frozenset(raw_brake.get("confirm", [])),
    )
    parsed_windows = []
    for index, raw in enumerate(document.data.get("maintenanceWindows", [])):
        window, found = _window(document, raw, ("maintenanceWindows", index))
        problems += found
        if window is not None:
            parsed_windows.append(window)
    return FleetSettings(rollout=rollout, brake=brake, windows=tuple(parsed_windows)), problems


def _window(
    document: Document, raw: Mapping[str, Any], here: Path
) -> tuple[windows.Window | None, list[Problem]]:
    problems = []
    try:
        schedule = windows.parse_cron(raw["schedule"])
    except windows.CronError as error:
        problems.append(Problem(FLEET_FILE, document.line_of((*here, "schedule")), f"schedule: {error}"))
    zone_problem = windows.check_time_zone(raw["timeZone"])
    if zone_problem:
        problems.append(Problem(FLEET_FILE, document.line_of((*here, "timeZone")), zone_problem))
    if problems:
        return None, problems
    selector = raw.get("clusterSelector")
    window = windows.Window(
        name=raw["name"],
        schedule=schedule,
        duration_minutes=raw["durationMinutes"],
        time_zone=raw["timeZone"],
        cluster_names=tuple(raw["clusterNames"]) if "clusterNames" in raw else None,
        selector=None if selector is None else _selector(selector),
        group=raw.get("clusterGroup"),
    )
    return window, []


def _at(data: Any, path: Path) -> Any:
    for part in path:
        data = data[part]
    return data


def _selector(data: Mapping[str, Any]) -> LabelSelector:
    return LabelSelector(
        match_labels=dict(data.get("matchLabels", {})),
        match_expressions=tuple(
            Requirement(key=e["key"], operator=e["operator"], values=tuple(e.get("values", [])))
            for e in data.get("matchExpressions", [])
        ),
    )


def _amount(raw: Mapping[str, Any], key: str, here: Path, add: Any, *, minimum: int) -> Amount | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= 1_000_000:
        return Amount(value)
    if isinstance(value, str) and _PERCENT.match(value) and int(value[:-1]) >= minimum:
        return Amount(int(value[:-1]), percent=True)
    add((*here, key), f"{key} must be a whole number >= {minimum} or a percentage like '25%', got {value!r}")
    return None


def spec_for(repo: FleetRepo, bundle: Bundle) -> RolloutSpec:
    """The bundle's own rollout, else the repo-wide default (a bundle's ``rollout`` replaces it whole)."""
    if bundle.rollout is not None:
        return bundle.rollout
    return (repo.settings or FleetSettings()).rollout


def wave_position(repo: FleetRepo, bundle: Bundle, cluster: Cluster) -> WavePosition | None:
    """Where ``cluster`` stands in the staged rollout of ``bundle``; None when it is not staged."""
    spec = spec_for(repo, bundle)
    if not spec.staged:
        return None
    index, wave = spec.wave_of(cluster, repo.groups)
    sizes = [0] * (len(spec.waves) + 1)
    for other in repo.clusters.values():
        if matching_targets(bundle, other, repo.groups):
            sizes[spec.wave_of(other, repo.groups)[0] - 1] += 1
    return WavePosition(index=index, name=wave.name, count=len(sizes), spec=spec, sizes=tuple(sizes))


def check_wave_groups_of(
    settings: FleetSettings | None, bundles: Iterable[Bundle], groups: Mapping[str, ClusterGroup]
) -> list[Problem]:
    specs = [bundle.rollout for bundle in bundles if bundle.rollout is not None]
    if settings is not None:
        specs.append(settings.rollout)
    return [problem for spec in specs for problem in check_wave_groups(spec, groups)]
