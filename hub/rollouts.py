"""Staged rollouts on the hub: which waves a commit of a bundle has been released to (pure).

The rules are here; the data they work on (wave specs, members, the memory, the pictures) is in
``hub.rollout_model``.

The hub never reads the fleet repo: every agent reports, per staged bundle, the commit it planned
at, its wave and the waves' numbers (``hub.rollout_contract``).  From those reports and a small
memory per (bundle, commit) — when each wave was released, whether the rollout halted, since when
each cluster has been Ready — :func:`advance` works out the rollout, and :func:`gate` answers one
cluster.  The rules (also in fleet-repo-example/README.md, "Staged rollouts"):

- Wave 1 is released when the hub first hears of the commit; wave k+1 when wave k *passes*.
- A cluster of wave k counts at the commit once it has reported it.  Wave k passes when every one
  of its clusters is Ready at the commit for ``bake_seconds`` (measured on the hub's clock from the
  first time the hub saw it Ready there), or has failed within the budget, or has not reported the
  commit yet and the wave's ``deadline_seconds`` (from its release) has passed: offline clusters
  are "not yet", never failed.  A cluster that reported the commit and is still applying always
  holds the wave.
- More failed clusters than ``max_failed`` (a count, or a % of the wave rounded down) halts the
  rollout of that commit for good: no further wave is released.  A newer commit starts a new
  rollout from wave 1; an older commit's rollout is frozen where it was (a cluster still at that
  commit gets it only if its wave had been released for it).
- ``max_concurrent`` bounds how many clusters of a wave apply at once: a slot is taken from the
  "go" until the cluster reports Ready (or failed) at the commit, or after ``GRANT_TTL_SECONDS``.
- A paused rollout (on the hub, or ``paused`` in the repo) releases no wave and gives no "go".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub.rollout_model import CATEGORIES, ClusterState, Member, Memory, RolloutView, WaveSpec, WaveView

GRANT_TTL_SECONDS = 600.0
FAILED_STATES = ("Failed", "Degraded")


def amount(value: int | str | None, total: int) -> int | None:
    """A count, or a percentage of ``total`` rounded down; None stays None (no limit)."""
    if value is None:
        return None
    if isinstance(value, str):
        return int(value.rstrip("%")) * total // 100
    return value


def _classify(member: Member, memory: Memory, wave: WaveSpec, now: float) -> ClusterState:
    if member.commit != memory.commit:
        return ClusterState(member.cluster, "not_yet" if member.online else "offline", "not yet")
    if member.failed or member.state in FAILED_STATES:
        return ClusterState(member.cluster, "failed", member.state, member.error)
    if member.holding:
        return ClusterState(member.cluster, "not_yet" if member.online else "offline", "waiting")
    if member.state == "Ready":
        since = memory.ready_seen.get(member.cluster, now)
        baked = now - since >= wave.bake_seconds
        return ClusterState(member.cluster, "ready", "baked" if baked else "baking")
    return ClusterState(member.cluster, "in_progress", member.state)


def with_askers(memory: Memory, members: Sequence[Member]) -> list[Member]:
    """A cluster that asked for the commit's gate is at the commit even before its report says so."""
    known = {m.cluster: m for m in members}
    for cluster, wave in memory.asked.items():
        member = known.get(cluster)
        if member is None or member.commit != memory.commit:
            online = member.online if member is not None else True
            known[cluster] = Member(cluster, wave, memory.commit, "Pending", holding=True, online=online)
    return list(known.values())


def _observe_ready(memory: Memory, members: Iterable[Member], now: float) -> None:
    """Start each cluster's bake clock the first time it is seen Ready at the commit; reset it when not."""
    for member in members:
        ready = member.commit == memory.commit and member.state == "Ready" and not member.holding
        if ready and not member.failed:
            memory.ready_seen.setdefault(member.cluster, now)
        else:
            memory.ready_seen.pop(member.cluster, None)


def _wave_of(member: Member, memory: Memory) -> int:
    return min(max(member.wave, 1), len(memory.waves))


def advance(memory: Memory, members: Sequence[Member], now: float, *, paused: bool) -> RolloutView:
    """Update ``memory`` (bake clocks, releases, halt) from the members and return the rollout's picture.

    Only a rollout that is neither paused nor halted releases waves.
    """
    members = with_askers(memory, [m for m in members if m.state != "Paused"])  # paused: no part
    _observe_ready(memory, members, now)
    by_wave: dict[int, list[Member]] = {}
    for member in members:
        by_wave.setdefault(_wave_of(member, memory), []).append(member)
    for cluster, granted in list(memory.grants.items()):
        if now - granted > GRANT_TTL_SECONDS:
            del memory.grants[cluster]
    views = []
    stamps = []  # what a wave's picture depends on that this loop may change (releases, the halt)
    for index, spec in enumerate(memory.waves, start=1):
        view = _wave_view(index, spec, by_wave.get(index, []), memory, now)
        views.append(view)
        stamps.append((len(memory.released), memory.halted_at))
        released = index in memory.released
        if not released:
            continue
        if view.counts["failed"] > (amount(spec.max_failed, view.size) or 0) and memory.halted_at is None:
            memory.halted_at, memory.halted_wave = now, index
        if (
            view.passed
            and memory.halted_at is None
            and not paused
            and index + 1 <= len(memory.waves)
            and index + 1 not in memory.released
        ):
            memory.released[index + 1] = now
    final = (len(memory.released), memory.halted_at)
    views = [  # drawn again only where a release or the halt came after the wave was drawn
        view if stamp == final else _wave_view(i, spec, by_wave.get(i, []), memory, now)
        for i, (spec, view, stamp) in enumerate(zip(memory.waves, views, stamps, strict=True), start=1)
    ]
    failing = tuple(c for v in views for c in v.clusters if c.category == "failed")
    if memory.halted_at is not None:
        state = "halted"
    elif all(v.passed for v in views):
        state = "complete"
    else:
        state = "paused" if paused else "progressing"
    return RolloutView(memory.bundle, memory.commit, state, tuple(views), failing, paused)


def _wave_view(index: int, spec: WaveSpec, members: Sequence[Member], memory: Memory, now: float) -> WaveView:
    clusters = tuple(sorted((_classify(m, memory, spec, now) for m in members), key=lambda c: c.cluster))
    counts = {category: 0 for category in CATEGORIES}
    for each in clusters:
        counts[each.category] += 1
    unheard = max(0, (spec.size or 0) - len(clusters))  # in the wave per the repo, never reported
    counts["not_yet"] += unheard
    size = len(clusters) + unheard
    released_at = memory.released.get(index)
    deadline_over = released_at is not None and now - released_at >= spec.deadline_seconds
    budget = amount(spec.max_failed, size) or 0

    def settled(state: ClusterState) -> bool:
        if state.category == "ready":
            return state.detail == "baked"
        if state.category == "failed":
            return True
        if state.category in ("not_yet", "offline"):
            return deadline_over and (state.detail == "not yet" or state.category == "offline")
        return False

    passed = (
        released_at is not None
        and counts["failed"] <= budget
        and all(settled(s) for s in clusters)
        and (unheard == 0 or deadline_over)
    )
    seconds_left = None
    baking = [
        spec.bake_seconds - (now - memory.ready_seen[c.cluster])
        for c in clusters
        if c.detail == "baking" and c.cluster in memory.ready_seen
    ]
    if memory.halted_wave == index:
        state = "halted"
    elif released_at is None:
        state = "waiting"
    elif passed:
        state = "released"
    elif baking and all(settled(s) or s.detail == "baking" for s in clusters):
        state, seconds_left = "baking", max(0.0, max(baking))
    else:
        state = "applying"
        if released_at is not None and not deadline_over:
            seconds_left = spec.deadline_seconds - (now - released_at)
    total = size
    summary = (
        f"{counts['ready']} of {total} Ready, {counts['in_progress']} applying, {counts['failed']} failed "
        f"(budget {budget}), {counts['offline']} offline, {counts['not_yet']} not yet"
    )
    return WaveView(
        index, spec.name, state, spec, counts, clusters, released_at, passed, seconds_left, summary, size
    )


@dataclass(frozen=True)
class Answer:
    decision: str  # go | hold
    reason: str
    grant: bool = False  # the "go" takes a concurrency slot


def gate(view: RolloutView, memory: Memory, member: Member, now: float, *, current: bool) -> Answer:
    """The answer to one cluster asking to apply the rollout's commit.  ``current``: no newer commit."""
    index = _wave_of(member, memory)
    wave = view.waves[index - 1]
    commit = memory.commit[:12]
    if not current:  # frozen: a cluster still at this commit gets it only where it was released
        if index in memory.released and memory.halted_at is None:
            return Answer("go", f"wave {wave.name} released")
        return Answer("hold", f"waiting for wave {wave.name}: a newer commit is rolling out")
    if view.paused:
        return Answer("hold", f"waiting for wave {wave.name}: the rollout of {commit} is paused")
    if memory.halted_at is not None:
        halted = view.waves[(memory.halted_wave or 1) - 1]
        return Answer(
            "hold",
            f"the rollout of {commit} halted in wave {halted.name}: "
            f"{halted.counts['failed']} of {halted.size} failed",
        )
    if index not in memory.released:
        blocking = next(w for w in reversed(view.waves[: index - 1]) if w.released_at is not None)
        left = f", {blocking.seconds_left:.0f} s left" if blocking.seconds_left is not None else ""
        return Answer(
            "hold", f"waiting for wave {blocking.name} ({blocking.state}{left}): {blocking.summary}"
        )
    if member.cluster in memory.grants:
        return Answer("go", f"wave {wave.name} released")
    limit = amount(wave.spec.max_concurrent, wave.size)
    if limit is not None:
        applying = _applying(wave, memory, member.cluster, index)
        if applying >= max(1, limit):
            return Answer(
                "hold", f"waiting for a slot in wave {wave.name}: {applying} of {max(1, limit)} applying"
            )
        return Answer("go", f"wave {wave.name} released", grant=True)
    return Answer("go", f"wave {wave.name} released")


def _applying(wave: WaveView, memory: Memory, asking: str, index: int) -> int:
    """Clusters of the wave applying the change, the asking one aside: those in progress, and those
    granted a "go" that are not yet Ready or failed (also a grant the wave's picture does not show
    yet: the picture may be a second old). Costs the grants, not the wave's size."""
    categories = wave.categories
    count = wave.counts["in_progress"] - (categories.get(asking) == "in_progress")
    for cluster in memory.grants:
        if cluster == asking:
            continue
        category = categories.get(cluster)
        if category in ("not_yet", "offline") or (
            category is None and min(max(memory.asked.get(cluster, 0), 1), len(memory.waves)) == index
        ):
            count += 1
    return count
