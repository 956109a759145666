"""Read queries shared by the JSON API and the pages: rollouts from the read model's counts."""

from __future__ import annotations

from hub.aggregate import BundlePlacement, ClusterView, Rollout, rollout_from_counts
from hub.readmodel import ReadModel


def placement(view: ClusterView, bundle: str) -> BundlePlacement | None:
    for b in view.summary.bundles:
        if b.bundle == bundle:
            return BundlePlacement(
                view.summary.name, b.state, b.commit, b.desired_commit, b.chart_version, view.connectivity
            )
    return None


def rollout(model: ReadModel, bundle: str, now: float, offset: int = 0, limit: int = 0) -> Rollout | None:
    """The rollout of ``bundle`` with one page of its placements (none when ``limit`` is 0)."""
    rollup = model.rollup(bundle, now)
    if rollup is None:
        return None
    views = model.placements(bundle, offset, limit, now) if limit else []
    placements = tuple(p for v in views if (p := placement(v, bundle)) is not None)
    return rollout_from_counts(bundle, rollup.by_commit, rollup.desired, rollup.offline, placements)


def rollouts(model: ReadModel, now: float, offset: int, limit: int) -> tuple[int, list[Rollout]]:
    """(number of bundles, one page of their rollouts by name)."""
    names = model.bundle_names()
    page = [r for name in names[offset : offset + limit] if (r := rollout(model, name, now)) is not None]
    return len(names), page
