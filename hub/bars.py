"""One component for every "how are N clusters distributed" picture: a stacked bar with text.

Used for the fleet's states, each label group, and the distribution of clusters over commits,
digests, chart versions, agent versions and architectures (the rollout view can use it too). The
bar is inline SVG (widths as SVG attributes: the page's Content-Security-Policy allows no inline
``style``), hidden from screen readers; the legend beside it carries the same information as text
(label, count, percentage), each item a link when it filters. Colours come from the page's
colour-blind-safe palette (Okabe-Ito) by CSS class; the text never depends on the colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hub.html_text import e

WIDTH = 1000
CATEGORIES = 8  # categorical colours c0..c7 for values that are not states (commits, versions)


@dataclass(frozen=True, slots=True)
class Segment:
    label: str
    count: int
    css: str  # a state name (Ready, Failed, Offline...) or c0..c7
    href: str | None = None


def percent(count: int, total: int) -> str:
    if total <= 0:
        return "0%"
    share = 100 * count / total
    if share == 0 or share >= 10 or share == int(share):
        return f"{share:.0f}%"
    return f"{share:.1f}%" if share >= 0.1 else "<0.1%"


def categorical(index: int) -> str:
    return f"c{min(index, CATEGORIES - 1)}"


def stacked_bar(segments: Sequence[Segment], *, label: str, legend: bool = True, limit: int = 12) -> str:
    """A bar of ``segments`` (zero counts skipped) and, unless ``legend`` is False, its text legend.

    At most ``limit`` segments are drawn; the rest are one grey "N others" segment.
    """
    shown = [s for s in segments if s.count > 0]
    if len(shown) > limit:
        rest = sum(s.count for s in shown[limit - 1 :])
        shown = [*shown[: limit - 1], Segment(f"{len(shown) - limit + 1} others", rest, "other")]
    total = sum(s.count for s in shown)
    rects, x = [], 0.0
    for s in shown:
        width = WIDTH * s.count / total if total else 0
        width = max(width, 2.0)  # a single cluster among 100,000 stays visible
        rects.append(
            f'<rect class="{e(s.css, 20)}" x="{x:.1f}" y="0" width="{width:.1f}" height="20">'
            f"<title>{e(s.label, 120)}: {s.count} ({percent(s.count, total)})</title></rect>"
        )
        x += width
    text = ", ".join(f"{s.count} {s.label}" for s in shown) or "no clusters"
    svg = (
        f'<svg class="bar" viewBox="0 0 {max(WIDTH, x):.0f} 20" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false">{"".join(rects)}</svg>'
    )
    body = f'<div class="stack" role="group" aria-label="{e(label, 120)}: {e(text, 600)}">{svg}'
    if legend:
        body += legend_of(shown, total)
    return body + "</div>"


def legend_of(segments: Sequence[Segment], total: int, *, counts: bool = True) -> str:
    """The text of a bar: each segment's label, count (unless ``counts`` is False) and share."""
    items = []
    for s in segments:
        number = f"<b>{s.count}</b> " if counts else ""
        inner = (
            f'<i class="sw {e(s.css, 20)}" aria-hidden="true"></i>{e(s.label, 120)} '
            f"{number}<small>{percent(s.count, total)}</small>"
        )
        if s.href:
            items.append(f'<a class="key" href="{e(s.href, 2000)}">{inner}</a>')
        else:
            items.append(f'<span class="key">{inner}</span>')
    return f'<p class="legend">{" ".join(items)}</p>'


def distribution(
    items: Sequence[tuple[str, int]],
    *,
    label: str,
    first: str | None = None,
    hrefs: dict[str, str] | None = None,
    limit: int = 8,
) -> str:
    """Clusters over values that are not states (commits, digests, versions, architectures): one
    colour per value in the given order, ``first`` (the target or newest) always first and marked."""
    ordered_items = sorted(items, key=lambda kv: kv[0] != first) if first is not None else list(items)
    segments = [
        Segment(
            f"{value or '(none)'}{' (newest)' if value == first else ''}",
            n,
            categorical(i),
            (hrefs or {}).get(value),
        )
        for i, (value, n) in enumerate(ordered_items)
    ]
    return stacked_bar(segments, label=label, limit=limit)
