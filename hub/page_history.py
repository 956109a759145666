"""History pages: ``/history`` (the fleet over 24 h / 7 d and its events) and
``/clusters/{name}/history`` (one cluster's timeline and events from its retained history)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from hub import pages
from hub.bars import Segment, legend_of
from hub.connectivity import describe_age
from hub.fleetviews import ordered, sentence
from hub.html_text import e
from hub.page_glance import age, href, page_links
from hub.timeline import WINDOWS, Event, Span

HEIGHT = 60
COLUMNS = {"24h": 96, "7d": 168}  # 15 minutes, 1 hour


def _clock(epoch: float, window: str) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%MZ" if window == "24h" else "%a %d %H:00Z")


def window_links(path: str, window: str) -> str:
    links = [
        f"<b>{name}</b>" if name == window else f'<a href="{e(href(path, {"window": name}), 500)}">{name}</a>'
        for name in WINDOWS
    ]
    return f'<p class="windows">Last {" · ".join(links)}</p>'


def fleet_timeline(columns: Sequence[tuple[float, dict[str, int] | None]], window: str) -> str:
    width = 1000 / max(1, len(columns))
    rects, rows, previous = [], [], None
    for i, (end, counts) in enumerate(columns):
        if not counts:
            continue
        total = sum(counts.values()) or 1
        y = 0.0
        title = f"{_clock(end, window)}: {sentence(counts)}"
        for state, n in ordered(counts):
            h = HEIGHT * n / total
            rects.append(
                f'<rect class="{state}" x="{i * width:.2f}" y="{y:.2f}" width="{width:.2f}" height="{h:.2f}">'
                f"<title>{e(title, 400)}</title></rect>"
            )
            y += h
        if counts != previous:
            rows.append(f"<tr><td>{_clock(end, window)}</td><td>{e(sentence(counts), 400)}</td></tr>")
        previous = counts
    if not rects:
        return '<p class="muted">No samples yet: the hub samples the fleet every 5 minutes.</p>'
    return (
        f'<svg class="timeline" viewBox="0 0 1000 {HEIGHT}" preserveAspectRatio="none" aria-hidden="true">'
        f"{''.join(rects)}</svg>"
        f'<details><summary>As text ({len(rows)} changes)</summary><table class="changes"><thead><tr>'
        f"<th>Until</th><th>Clusters</th></tr></thead><tbody>{''.join(rows[-200:])}</tbody></table></details>"
    )


def _cluster_link(name: str) -> str:
    return f'<a href="/clusters/{quote(name, safe="")}">{e(name)}</a>' if name else ""


def events_table(events: Sequence[Event], now: float, *, with_cluster: bool, table_id: str = "events") -> str:
    if not events:
        return '<p class="muted">No events.</p>'
    rows = "".join(
        f'<tr data-kind="{ev.kind}"><td>{age(ev.at, now)}</td>'
        + (f"<td>{_cluster_link(ev.cluster)}</td>" if with_cluster else "")
        + f'<td><span class="badge {e(ev.state, 20)}">{e(ev.state, 20)}</span></td>'
        f"<td>{e(ev.kind, 20)}</td><td>{e(ev.text, 400)}</td></tr>"
        for ev in events
    )
    head = (
        "<th>When</th>"
        + ("<th>Cluster</th>" if with_cluster else "")
        + "<th>State</th><th>Kind</th><th>What</th>"
    )
    return f"<table id={table_id}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def history_page(
    columns: Sequence[tuple[float, dict[str, int] | None]],
    window: str,
    total: int,
    events: Sequence[Event],
    now: float,
    page: int,
    size: int,
) -> str:
    body = (
        f"<h1>Fleet history</h1>{window_links('/history', window)}"
        f'<section id="fleet-timeline">{fleet_timeline(columns, window)}</section>'
        f"<h2>Events</h2><p>{total} recent events (the newest {size * 20} are kept), newest first.</p>"
        f"{events_table(events, now, with_cluster=True)}"
        f"{page_links('/history', {'window': window}, page, total, size)}"
    )
    return pages.layout("History", body)


def cluster_timeline(spans: Sequence[Span], start: float, now: float) -> str:
    length = max(1.0, now - start)
    rects: list[str] = []
    durations: dict[str, float] = {}
    for s in spans:
        x = 1000 * (s.start - start) / length
        w = max(1000 * (s.end - s.start) / length, 1.0)
        rects.append(
            f'<rect class="{e(s.state, 20)}" x="{x:.2f}" y="0" width="{w:.2f}" height="24"><title>'
            f"{e(s.state, 20)} for {describe_age(s.end - s.start)}</title></rect>"
        )
        durations[s.state] = durations.get(s.state, 0.0) + s.end - s.start
    segments = [Segment(f"{state} {describe_age(d)}", round(d), state) for state, d in durations.items()]
    return (
        f'<svg class="timeline" viewBox="0 0 1000 24" preserveAspectRatio="none" aria-hidden="true">'
        f"{''.join(rects)}</svg>{legend_of(segments, round(length), counts=False)}"
    )


def cluster_history_page(
    name: str,
    window: str,
    spans: Sequence[Span],
    start: float,
    events: Sequence[Event],
    now: float,
    fleet_events: Sequence[Event],
    params: Mapping[str, str],
) -> str:
    path = f"/clusters/{quote(name, safe='')}/history"
    body = (
        f"<h1>History of {_cluster_link(name)}</h1>{window_links(path, window)}"
        f'<section id="cluster-timeline">{cluster_timeline(spans, start, now)}</section>'
        "<h2>Events from its retained reports</h2>"
        f"{events_table(events, now, with_cluster=False)}"
        "<h2>Events seen by this hub since it started</h2>"
        f"{events_table(fleet_events, now, with_cluster=False, table_id='hub-events')}"
    )
    return pages.layout(f"{name} history", body)
