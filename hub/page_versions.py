"""Commits and versions: ``/versions`` (per bundle: commits, chart versions, digests; agent versions
and architectures) and ``/versions/{bundle}`` (the clusters not yet on the newest commit)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from hub import pages
from hub.aggregate import ClusterView, Rollout
from hub.bars import distribution
from hub.fleetviews import BundleVersions
from hub.html_text import e
from hub.page_errors import CLUSTER_HEAD
from hub.page_glance import page_links


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


def versions_page(
    total: int,
    bundles: Sequence[BundleVersions],
    agents: Sequence[tuple[str, int]],
    arches: Sequence[tuple[str, int]],
    page: int,
    size: int,
) -> str:
    fleet = (
        '<section id="agents"><h2>Agents</h2>'
        f"{_dist('Agent versions', agents, first=_newest(agents))}"
        f"{_dist('Architectures (label arch)', arches)}"
        "</section>"
    )
    body = (
        f"<h1>Commits and versions</h1>{fleet}<p id=bundle-count>{total} bundles</p>"
        f"{''.join(_bundle(v) for v in bundles)}{page_links('/versions', {}, page, total, size)}"
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
