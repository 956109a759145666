"""The rollout picture on the status page: per bundle, each wave's state and a bar of its clusters.

Pure functions from :class:`hub.rollout_model.RolloutView` to HTML; every agent-supplied string is
escaped (``hub.html_text.e``).  Active rollouts (progressing, paused, halted) come first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from hub.bars import Segment, stacked_bar
from hub.html_text import e
from hub.rollout_model import CATEGORIES, RolloutView, WaveView

_LABELS = {
    "ready": "Ready at the new digest",
    "in_progress": "in progress",
    "failed": "failed",
    "offline": "offline",
    "not_yet": "not yet",
}
_ROLLOUT_BADGE = {"progressing": "InProgress", "complete": "Ready", "halted": "Failed", "paused": "Paused"}
_WAVE_BADGE = {
    "waiting": "Paused",
    "applying": "InProgress",
    "baking": "Pending",
    "released": "Ready",
    "halted": "Failed",
}


# Each category drawn in its state's colour (the page's colour-blind-safe palette).
_CSS = {
    "ready": "Ready",
    "in_progress": "InProgress",
    "failed": "Failed",
    "offline": "Offline",
    "not_yet": "NoData",
}


def _bar(wave: WaveView) -> str:
    """The wave's clusters by category, with the shared SVG bar (the page's CSP allows no inline
    ``style``, so widths cannot be CSS) and its text legend."""
    segments = [Segment(_LABELS[c], wave.counts[c], _CSS[c]) for c in CATEGORIES]
    return stacked_bar(segments, label=f"wave {wave.name}")


def _wave_row(wave: WaveView) -> str:
    state = wave.state
    if wave.seconds_left is not None and state in ("baking", "applying"):
        what = "bake" if state == "baking" else "deadline"
        state = f"{state} · {wave.seconds_left:.0f} s of {what} left"
    return (
        f'<tr data-wave="{e(wave.name)}"><td>{wave.index}. {e(wave.name)}</td>'
        f'<td><span class="badge {_WAVE_BADGE.get(wave.state, "Pending")}">{e(state, 80)}</span></td>'
        f"<td>{_bar(wave)}</td>"
        f"<td class=muted>bake {wave.spec.bake_seconds}s, max failed {e(wave.spec.max_failed, 10)}, "
        f"deadline {wave.spec.deadline_seconds}s"
        f"{'' if wave.spec.max_concurrent is None else f', max concurrent {e(wave.spec.max_concurrent, 10)}'}"
        "</td></tr>"
    )


def rollout_block(view: RolloutView) -> str:
    failing = "".join(
        f'<li><a href="/clusters/{quote(c.cluster)}">{e(c.cluster)}</a> {e(c.detail, 40)}'
        f"{f': <code>{e(c.error, 500)}</code>' if c.error else ''}</li>"
        for c in view.failing[:50]
    )
    return (
        f'<div class="rollout" data-bundle="{e(view.bundle)}" data-state="{e(view.state)}">'
        f'<h3><a href="/bundles/{quote(view.bundle)}">{e(view.bundle)}</a> '
        f"<code>{e(view.commit[:12], 12)}</code> "
        f'<span class="badge {_ROLLOUT_BADGE.get(view.state, "Pending")}">{e(view.state)}</span></h3>'
        "<table class=waves><thead><tr><th>Wave</th><th>State</th><th>Clusters</th><th>Rules</th></tr>"
        "</thead>"
        f"<tbody>{''.join(_wave_row(w) for w in view.waves)}</tbody></table>"
        f"{f'<p>Failing:</p><ul class=failing>{failing}</ul>' if failing else ''}</div>"
    )


def brakes_block(brakes: Sequence[Mapping[str, Any]]) -> str:
    if not brakes:
        return ""
    items = "".join(
        f'<li><a href="/clusters/{quote(str(b["cluster"]))}">{e(b["cluster"])}</a>: refused to uninstall '
        f"{len(b['releases'])} release(s) ({e(b['reason'], 300)}): "
        f"{e(', '.join(b['releases'][:20]), 1000)}. {e(b['how_to_confirm'], 300)}</li>"
        for b in brakes
    )
    return f'<h2>Deletion brake</h2><ul id="brakes">{items}</ul>'


def section(views: Sequence[RolloutView], brakes: Sequence[Mapping[str, Any]], *, only_active: bool) -> str:
    """The "Rollouts" part of a page (active ones first); empty when there is nothing to show."""
    shown = [v for v in views if v.active or not only_active]
    blocks = "".join(rollout_block(v) for v in shown)
    rollouts = f'<h2>Rollouts</h2><div id="rollouts">{blocks}</div>' if blocks else ""
    return rollouts + brakes_block(brakes)
