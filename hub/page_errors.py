"""Errors grouped by cause: ``/errors`` (one line per signature) and ``/errors/{id}`` (its clusters)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from hub import pages
from hub.aggregate import ClusterView
from hub.error_groups import ErrorGroup
from hub.html_text import e
from hub.page_glance import age, page_links


def _top(counts: Counter[str], limit: int = 3, *, commits: bool = False) -> str:
    items = counts.most_common(limit)
    shown = ", ".join(
        f"<code>{e((value[:12] if commits else value) or '—', 80)}</code> ({n})" for value, n in items
    )
    more = len(counts) - len(items)
    return shown + (f" <span class=muted>+{more} more</span>" if more > 0 else "")


def _row(group: ErrorGroup, now: float) -> str:
    link = f"/errors/{group.id}"
    return (
        f'<tr data-signature="{group.id}"><td><a href="{link}"><b>{e(group.signature, 200)}</b></a>'
        f'<div class="muted">e.g. on {e(group.example_cluster)}: <q>{e(group.example, 300)}</q></div></td>'
        f'<td><a href="{link}">{group.count} cluster{"s" if group.count != 1 else ""}</a></td>'
        f"<td>{_top(group.bundles)}</td><td>{_top(group.commits, commits=True)}</td>"
        f"<td>{age(group.first_seen, now)}</td><td>{age(group.last_seen, now)}</td></tr>"
    )


CLUSTER_HEAD = (
    "<thead><tr><th>Cluster</th><th>Health</th><th>Connectivity</th><th>Commit</th>"
    "<th>Bundles</th><th>Labels</th><th>Agent</th></tr></thead>"
)
HEAD = (
    '<thead><tr><th scope="col">Cause (signature) and an example</th><th scope="col">Clusters</th>'
    '<th scope="col">Bundles</th><th scope="col">Commits</th><th scope="col">First seen</th>'
    '<th scope="col">Last seen</th></tr></thead>'
)


def errors_page(total: int, groups: Sequence[ErrorGroup], now: float, page: int, size: int) -> str:
    rows = "".join(_row(g, now) for g in groups) or "<tr><td colspan=6>No errors reported.</td></tr>"
    body = (
        f"<h1>Errors by cause</h1><p id=error-count>{total} distinct cause{'s' if total != 1 else ''}; "
        "numbers, names and hashes are stripped from the messages so that clusters failing alike "
        f"are one line.</p><table id=errors>{HEAD}<tbody>{rows}</tbody></table>"
        f"{page_links('/errors', {}, page, total, size)}"
    )
    return pages.layout("Errors", body)


def error_page(
    group: ErrorGroup, total: int, views: Sequence[ClusterView], now: float, page: int, size: int
) -> str:
    rows = "".join(pages.cluster_row(v) for v in views)
    body = (
        f"<h1>Error: {e(group.signature, 200)}</h1>"
        f"<table id=errors>{HEAD}<tbody>{_row(group, now)}</tbody></table>"
        f"<h2>{total} affected clusters</h2>"
        f"<table id=clusters>{CLUSTER_HEAD}<tbody>{rows}</tbody></table>"
        f"{page_links(f'/errors/{group.id}', {}, page, total, size)}"
    )
    return pages.layout("Error", body)
