"""The hub's compact in-memory view of each cluster's latest report (the full report stays in the store).

Strings that repeat across the fleet (commits, states, chart versions, bundle names, label keys and
values) are interned, so 100,000 clusters on the same commit hold one copy of it. Each summary is
also kept in the store in a compact JSON form, so a restart rebuilds the fleet without re-parsing
every current report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import orjson

from hub.report_facts import ReportFacts
from hub.signatures import ProblemBrief, normalise, problems_of

_intern = sys.intern


@dataclass(frozen=True, slots=True)
class BundleBrief:
    bundle: str
    state: str
    commit: str | None  # applied
    desired_commit: str | None
    chart_version: str
    digest: str = ""  # the content digest the cluster applied (for the versions view)


@dataclass(frozen=True, slots=True)
class ClusterSummary:
    name: str
    sequence: int
    health: str  # as last reported: an Offline cluster keeps its last known health
    last_seen: float  # hub clock (epoch seconds) of the last accepted report, current or late
    reported_at: float  # hub clock when the current (highest-sequence) report arrived
    interval_seconds: int
    labels: dict[str, str]
    commit: str | None
    desired_commit: str | None
    agent_version: str
    source_error: str | None
    bundles: tuple[BundleBrief, ...]
    agent_arch: str = ""  # the agent's machine (uname -m), "" when not reported
    cause: str = ""  # signature of what is wrong ("" when healthy): clusters failing alike group by it
    rollout: dict[str, Any] | None = None  # the report's staged-rollout facts and refused prune
    problems: tuple[ProblemBrief, ...] = ()  # every error it reports, by signature (hub.signatures)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One stored report of a cluster, as its history lists it."""

    sequence: int
    received_at: float
    health: str | None
    commit: str | None


def _opt(text: str | None) -> str | None:
    return None if text is None else _intern(text)


_BRIEFS: dict[tuple[str, str, str | None, str | None, str, str], BundleBrief] = {}
_MAX_BRIEFS = 200_000


def _brief(
    bundle: str, state: str, commit: str | None, desired: str | None, version: str, digest: str = ""
) -> BundleBrief:
    """One shared object per distinct bundle brief: a fleet on one commit holds each brief once."""
    key = (bundle, state, commit, desired, version, digest)
    brief = _BRIEFS.get(key)
    if brief is None:
        if len(_BRIEFS) >= _MAX_BRIEFS:  # many distinct values (a hostile fleet): stay bounded
            _BRIEFS.clear()
        brief = _BRIEFS[key] = BundleBrief(
            _intern(bundle), _intern(state), _opt(commit), _opt(desired), _intern(version), _intern(digest)
        )
    return brief


_BRIEF_SETS: dict[tuple[tuple[Any, ...], ...], tuple[BundleBrief, ...]] = {}
_MAX_BRIEF_SETS = 100_000


def _brief_set(stored: list[list[Any]]) -> tuple[BundleBrief, ...]:
    """One shared tuple per distinct list of stored briefs: clusters alike share it, and the read
    model's start-up counts each set once (:meth:`hub.rollups.Rollups.load`)."""
    key = tuple(map(tuple, stored))
    found = _BRIEF_SETS.get(key)
    if found is None:
        if len(_BRIEF_SETS) >= _MAX_BRIEF_SETS:
            _BRIEF_SETS.clear()
        found = _BRIEF_SETS[key] = tuple(_brief(*b[:6]) for b in stored)
    return found


_ROLLOUTS: dict[bytes, dict[str, Any]] = {}
_MAX_ROLLOUTS = 50_000


def _shared_rollout(rollout: dict[str, Any] | None) -> dict[str, Any] | None:
    """One shared dict per distinct staged-rollout fact set (a fleet in the same waves holds a few),
    instead of one per cluster: about 1 KB each at 100,000 clusters. Treated as read-only."""
    if not rollout:
        return rollout
    key = orjson.dumps(rollout, option=orjson.OPT_SORT_KEYS)
    found = _ROLLOUTS.get(key)
    if found is None:
        if len(_ROLLOUTS) >= _MAX_ROLLOUTS:
            _ROLLOUTS.clear()
        found = _ROLLOUTS[key] = rollout
    return found


def signature(text: str, cluster: str = "") -> str:
    """The first line of an error with its varying parts replaced (:func:`hub.signatures.normalise`)."""
    return normalise(text, cluster)[:160]


def cause_of(report: ReportFacts) -> str:
    """Why a cluster is not Ready, as a short signature, or "" when nothing is wrong."""
    if report.source.error:
        return f"source: {signature(report.source.error, report.cluster)}"
    for bundle in report.bundles:
        if bundle.state in ("Failed", "Degraded"):
            detail = bundle.message or (bundle.non_ready[0].message if bundle.non_ready else "")
            return f"{bundle.state} {bundle.bundle}: {signature(detail, report.cluster)}"
    return ""


def summarize(report: ReportFacts, received_at: float) -> ClusterSummary:
    return ClusterSummary(
        name=_intern(report.cluster),
        sequence=report.sequence,
        health=_intern(report.health),
        last_seen=received_at,
        reported_at=received_at,
        interval_seconds=report.interval_seconds,
        labels={_intern(k): _intern(v) for k, v in report.labels.items()},
        commit=_opt(report.source.applied_commit),
        desired_commit=_opt(report.source.desired_commit),
        agent_version=_intern(report.agent_version),
        agent_arch=_intern(report.agent_arch),
        source_error=report.source.error,
        bundles=tuple(
            _brief(b.bundle, b.state, b.applied_commit, b.desired_commit, b.chart_version, b.digest)
            for b in report.bundles
        ),
        cause=_intern(cause_of(report)),
        rollout=_shared_rollout(report.rollout),
        problems=_problems((p.signature, p.bundle, p.example) for p in problems_of(report)),
    )


def _problems(items: Any) -> tuple[ProblemBrief, ...]:
    return tuple(
        ProblemBrief(_intern(sig), _intern(bundle), _intern(example)) for sig, bundle, example in items
    )


def summary_to_json(s: ClusterSummary) -> bytes:
    """The compact stored form (seconds and last_seen live in their own columns)."""
    data = [
        s.name,
        s.sequence,
        s.health,
        s.interval_seconds,
        s.labels,
        s.commit,
        s.desired_commit,
        s.agent_version,
        s.source_error,
        [[b.bundle, b.state, b.commit, b.desired_commit, b.chart_version, b.digest] for b in s.bundles],
        s.cause,
        s.rollout,
        [[p.signature, p.bundle, p.example] for p in s.problems],
        s.agent_arch,
    ]
    return orjson.dumps(data)  # compact, UTF-8: what json.dumps(separators, ensure_ascii=False) wrote


def summary_from_json(raw: bytes | str, reported_at: float, last_seen: float) -> ClusterSummary:
    data: list[Any] = orjson.loads(raw)
    name, sequence, health, interval, labels, commit, desired, agent, error, bundles, cause = data[:11]
    rollout = data[11] if len(data) > 11 else None
    problems = data[12] if len(data) > 12 else []  # older hubs stored no problems
    arch = data[13] if len(data) > 13 else ""
    return ClusterSummary(
        name=_intern(name),
        sequence=int(sequence),
        health=_intern(health),
        last_seen=max(last_seen, reported_at),
        reported_at=reported_at,
        interval_seconds=int(interval),
        labels={_intern(k): _intern(v) for k, v in labels.items()},
        commit=_opt(commit),
        desired_commit=_opt(desired),
        agent_version=_intern(agent),
        source_error=error,
        bundles=_brief_set(bundles),
        cause=_intern(cause),
        rollout=_shared_rollout(rollout),
        problems=_problems(problems),
        agent_arch=_intern(str(arch)),
    )
