"""Commits and versions: ``/versions`` (per bundle: commits, chart versions, digests; agent versions
and architectures, and agent versions per label value or per wave of the agent's own bundle) and
``/versions/{bundle}`` (the clusters not yet on the newest commit)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from hub import pages
from hub.aggregate import ClusterView, Rollout
from hub.bars import Segment, categorical, distribution, stacked_bar
from hub.fleetviews import AGENT_GROUPS_PER_PAGE, WAVE, AgentGroups, BundleVersions
from hub.html_text import e
from hub.page_errors import CLUSTER_HEAD
from hub.page_glance import href, page_links


def behind_href(bundle: str) -> str:
    return "/versions/" + quote(bundle, safe="")


def _short(commit: str | None) -> str:
    return commit[:12] if commit else ""


def _newest(items: Sequence[tuple[str, int]]) -> str | None:
    return items[0][0] if items else None


def _dist(title: str, items: Sequence[tuple[str, int]], first: str | None = None) -> str:
    return f'<div class="dist"><h3>{e(title)}</h3>{distribution(items, label=title, first=first)}</div>'


def _bundle(v: BundleVersions) -> str:
    r = v.rollout
    commits = [(_short(g.commit), g.clusters) for g in r.by_commit]
    behind = (
        f'<a href="{behind_href(r.bundle)}">{v.behind} not on the newest commit</a>'
        if v.behind
        else "all on the newest commit"
    )
    return (
        f'<section class="bundle" data-bundle="{e(r.bundle)}"><h2><a href="{pages.bundle_href(r.bundle)}">'
        f"{e(r.bundle)}</a> <small>{r.clusters} clusters, {behind}</small></h2>"
        f"{_dist('Commits', commits, first=_short(r.target_commit))}"
        f"{_dist('Chart versions', v.chart_versions, first=_newest(v.chart_versions))}"
        f"{_dist('Digests', [(d[:19], n) for d, n in v.digests])}"
        "</section>"
    )


def _dimension(by: str) -> str:
    return "wave of the agent's own bundle" if by == WAVE else f"label {by}"


def _agent_groups(g: AgentGroups, agents: Sequence[tuple[str, int]], page: int) -> str:
    """Agent versions per group, one colour per version across every group (the fleet's order)."""
    if not g.dimensions:
        return ""
    colour = {version: categorical(i) for i, (version, _) in enumerate(agents)}
    choices = " ".join(
        f"<b>{e(_dimension(d))}</b>"
        if d == g.by
        else f'<a href="{e(href("/versions", {"by": d}), 2000)}">{e(_dimension(d))}</a>'
        for d in g.dimensions
    )
    rows = "".join(
        f'<tr data-group="{e(value)}"><th scope="row">{e(value or "(none)")}</th><td>{n}</td><td>'
        + stacked_bar(
            [Segment(v or "(none)", count, colour.get(v, "other")) for v, count in versions],
            label=f"agent versions in {value}",
            limit=8,
        )
        + "</td></tr>"
        for value, n, versions in g.groups
    )
    table = (
        f'<table id="agent-groups"><thead><tr><th scope="col">{e(_dimension(g.by))}</th>'
        f'<th scope="col">Clusters</th><th scope="col">Agent versions</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
        if g.groups
        else f"<p>No cluster reports a {e(_dimension(g.by))}.</p>"
    )
    nav = page_links("/versions", {"by": g.by}, page, g.total, AGENT_GROUPS_PER_PAGE, name="apage")
    return f'<h3 id="agents-by">Agent versions by {e(_dimension(g.by))}</h3><p>By: {choices}</p>{table}{nav}'


def versions_page(
    total: int,
    bundles: Sequence[BundleVersions],
    agents: Sequence[tuple[str, int]],
    arches: Sequence[tuple[str, int]],
    groups: AgentGroups,
    page: int,
    size: int,
    agent_page: int = 1,
) -> str:
    fleet = (
        '<section id="agents"><h2>Agents</h2>'
        f"{_dist('Agent versions', agents, first=_newest(agents))}"
        f"{_dist('Architectures (label arch)', arches)}"
        f"{_agent_groups(groups, agents, agent_page)}"
        "</section>"
    )
    by = {"by": groups.by}
    body = (
        f"<h1>Commits and versions</h1>{fleet}<p id=bundle-count>{total} bundles</p>"
        f"{''.join(_bundle(v) for v in bundles)}{page_links('/versions', by, page, total, size)}"
    )
    return pages.layout("Versions", body)


def behind_page(r: Rollout, total: int, views: Sequence[ClusterView], page: int, size: int) -> str:
    rows = "".join(pages.cluster_row(v) for v in views)
    body = (
        f"<h1>{e(r.bundle)}: {total} clusters not on <code>{e(_short(r.target_commit))}</code></h1>"
        f'<p><a href="{pages.bundle_href(r.bundle)}">the bundle\'s rollout</a></p>'
        f"<table id=clusters>{CLUSTER_HEAD}<tbody>{rows}</tbody></table>"
        f"{page_links(behind_href(r.bundle), {}, page, total, size)}"
    )
    return pages.layout(r.bundle, body)
