"""The fleet at a glance (top of ``/``): a bar of the fleet's states, and the fleet grouped by a label."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlencode

from hub import fleetviews
from hub.bars import Segment, stacked_bar
from hub.connectivity import describe_age
from hub.context import HubContext
from hub.filters import BadQuery, page_number
from hub.fleetviews import Glance, Group, ordered, sentence, state_query
from hub.html_text import e

GROUPS_PER_PAGE = 50


def href(path: str, params: Mapping[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{path}?{query}" if query else path


def stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def age(epoch: float, now: float) -> str:
    """An age ("3h ago") that shows the absolute UTC time on hover and to machines."""
    iso = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{iso}" title="{stamp(epoch)}">{describe_age(now - epoch)} ago</time>'


def page_links(
    path: str, params: Mapping[str, str], page: int, total: int, size: int, name: str = "page"
) -> str:
    """Links to the first, last and nearby pages (never one link per page of a huge list)."""
    count = max(1, -(-total // size))
    if count <= 1:
        return ""
    links = []
    for number in sorted({1, count, *range(max(1, page - 2), min(count, page + 2) + 1)}):
        target = href(path, {**params, name: str(number)})
        links.append(f"<b>{number}</b>" if number == page else f'<a href="{e(target, 2000)}">{number}</a>')
    return f'<p class="pages">Page: {" ".join(links)} of {count}</p>'


def state_segments(counts: Mapping[str, int], base: Mapping[str, str]) -> list[Segment]:
    return [
        Segment(state, n, state, href("/", {**base, **state_query(state)})) for state, n in ordered(counts)
    ]


def _group_row(key: str, group: Group) -> str:
    base = {"selector": f"{key}={group.value}"}
    parts = [
        f'<a href="{e(href("/", base), 2000)}">{group.counts.get("Ready", 0)} of {group.total} Ready</a>'
    ]
    for state, n in ordered(group.counts):
        if state != "Ready":
            link = href("/", {**base, **state_query(state)})
            parts.append(f'<a href="{e(link, 2000)}"><span class="badge {state}">{n} {state}</span></a>')
    worst = "—"
    if group.worst:
        worst = f'<span class="badge {group.worst}">{group.counts[group.worst]} {group.worst}</span>'
        if group.cause:
            worst += f' <span class="muted">{e(group.cause, 160)}</span>'
    return (
        f'<tr data-group="{e(group.value)}"><th scope="row"><a href="{e(href("/", base), 2000)}">'
        f"{e(group.value, 120)}</a></th><td>{group.total}</td>"
        f"<td>{stacked_bar(state_segments(group.counts, base), label=group.value, legend=False)}"
        f'<div class="sentence" title="{e(sentence(group.counts), 400)}">{", ".join(parts)}</div></td>'
        f"<td>{worst}</td></tr>"
    )


def _group_form(g: Glance, params: Mapping[str, str]) -> str:
    keys = g.keys if g.key in g.keys else [g.key, *g.keys]
    options = "".join(
        f'<option value="{e(k, 253)}"{" selected" if k == g.key else ""}>{e(k, 60)}</option>' for k in keys
    )
    hidden = "".join(
        f'<input type="hidden" name="{e(k, 40)}" value="{e(v, 2000)}">'
        for k, v in params.items()
        if k in ("selector", "health", "connectivity") and v
    )
    return (
        f'<form method="get" action="/" id="grouping">{hidden}<label>Group by '
        f'<select name="group" aria-label="group by label">{options}</select></label>'
        '<button type="submit">Group</button></form>'
    )


def glance_block(g: Glance, params: Mapping[str, str], page: int) -> str:
    rows = "".join(_group_row(g.key, group) for group in g.groups) or (
        f"<tr><td colspan=4>No cluster has a label <code>{e(g.key, 60)}</code>.</td></tr>"
    )
    nav = page_links("/", params, page, g.groups_total, GROUPS_PER_PAGE, name="gpage")
    return (
        '<section id="glance" aria-labelledby="glance-title"><h2 id="glance-title">At a glance: '
        f'<span class="sentence">{e(sentence(g.states), 300)}</span></h2>'
        f'<div id="states">{stacked_bar(state_segments(g.states, {}), label="fleet")}</div>'
        f"{_group_form(g, params)}"
        f'<table id="groups"><caption>{g.groups_total} values of <code>{e(g.key, 60)}</code>, '
        "trouble first</caption><thead><tr>"
        f'<th scope="col">{e(g.key, 60)}</th><th scope="col">Clusters</th><th scope="col">States</th>'
        f'<th scope="col">Worst problem</th></tr></thead><tbody>{rows}</tbody></table>{nav}</section>'
    )


def glance_html(ctx: HubContext, params: Mapping[str, str]) -> str:
    """The glance block for the top of ``/`` (the hook :func:`hub.web.index` calls)."""
    try:
        page = page_number({"page": params.get("gpage", "")})
    except BadQuery as exc:
        raise BadQuery("gpage", str(exc).removeprefix("page: ")) from None
    size = GROUPS_PER_PAGE
    g = fleetviews.glance(ctx.model, params.get("group", ""), ctx.now(), (page - 1) * size, size)
    return glance_block(g, params, page)
