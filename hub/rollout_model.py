"""The data of a staged rollout on the hub: a wave's spec, one cluster's member record, the memory
kept per (bundle, commit) and persisted as JSON, and the pictures of a rollout and its waves.

The rules that work on them (:func:`hub.rollouts.advance`, :func:`hub.rollouts.gate`) are in
``hub.rollouts``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

CATEGORIES = ("ready", "in_progress", "failed", "offline", "not_yet")


@dataclass(frozen=True)
class WaveSpec:
    name: str
    max_concurrent: int | str | None = None
    max_failed: int | str = 0
    bake_seconds: int = 0
    deadline_seconds: int = 3600
    size: int | None = None  # clusters in the wave per the repo; those never heard from are "not yet"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WaveSpec:
        return cls(
            name=str(data["name"]),
            max_concurrent=data.get("max_concurrent"),
            max_failed=data.get("max_failed", 0),
            bake_seconds=int(data.get("bake_seconds", 0)),
            deadline_seconds=int(data.get("deadline_seconds", 3600)),
            size=None if data.get("size") is None else int(data["size"]),
        )


@dataclass(frozen=True, slots=True)  # the rollout index holds one per cluster and staged bundle
class Member:
    """One cluster's latest knowledge about one bundle's rollout."""

    cluster: str
    wave: int
    commit: str | None  # the fleet commit its last report (or gate request) planned at
    state: str  # the bundle's state in that report
    holding: bool = False  # the change is held by a gate (not applied)
    failed: bool = False  # the change failed there and was rolled back
    online: bool = True
    error: str = ""


@dataclass
class Memory:
    """What the hub remembers about the rollout of one commit of one bundle (persisted as JSON)."""

    bundle: str
    commit: str
    first_seen: float
    waves: tuple[WaveSpec, ...]
    released: dict[int, float] = field(default_factory=dict)  # wave index -> hub time released
    halted_at: float | None = None
    halted_wave: int | None = None
    ready_seen: dict[str, float] = field(default_factory=dict)  # cluster -> first seen Ready here
    grants: dict[str, float] = field(default_factory=dict)  # cluster -> time of its "go"
    asked: dict[str, int] = field(default_factory=dict)  # cluster -> its wave, once it asked at the commit

    @classmethod
    def start(cls, bundle: str, commit: str, waves: Sequence[WaveSpec], now: float) -> Memory:
        return cls(bundle, commit, now, tuple(waves), released={1: now})

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["released"] = {str(k): v for k, v in self.released.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Memory:
        return cls(
            bundle=data["bundle"],
            commit=data["commit"],
            first_seen=float(data["first_seen"]),
            waves=tuple(WaveSpec.from_json(w) for w in data["waves"]),
            released={int(k): float(v) for k, v in data.get("released", {}).items()},
            halted_at=data.get("halted_at"),
            halted_wave=data.get("halted_wave"),
            ready_seen={str(k): float(v) for k, v in data.get("ready_seen", {}).items()},
            grants={str(k): float(v) for k, v in data.get("grants", {}).items()},
            asked={str(k): int(v) for k, v in data.get("asked", {}).items()},
        )


class ClusterState(NamedTuple):  # a tuple: a picture of a 100k-cluster wave builds 100k of them
    cluster: str
    category: str  # one of CATEGORIES
    detail: str  # "baking", "baked", "waiting", "applying", state names...
    error: str = ""


@dataclass(frozen=True)
class WaveView:
    index: int
    name: str
    state: str  # waiting | applying | baking | released | halted
    spec: WaveSpec
    counts: Mapping[str, int]
    clusters: tuple[ClusterState, ...]
    released_at: float | None
    passed: bool
    seconds_left: float | None  # bake time left (baking) or deadline left (applying), when known
    summary: str
    size: int  # clusters in the wave: the ones heard from, and the rest the repo says it has

    @functools.cached_property
    def categories(self) -> dict[str, str]:
        """cluster -> category, built once per picture (gate questions look clusters up in it)."""
        return {c.cluster: c.category for c in self.clusters}


@dataclass(frozen=True)
class RolloutView:
    bundle: str
    commit: str
    state: str  # progressing | complete | halted | paused | superseded
    waves: tuple[WaveView, ...]
    failing: tuple[ClusterState, ...]
    paused: bool

    @property
    def active(self) -> bool:
        return self.state in ("progressing", "halted", "paused")
