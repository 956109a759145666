"""Server-rendered HTML for the status page: pure functions from views to strings, no external assets.

The layout, the badges and the fleet and bundle pages are here; a cluster's page is in
``hub.page_cluster``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import quote, urlencode

from hub.aggregate import ClusterView, FleetSummary, Rollout, rollout_sentence, state_query
from hub.connectivity import CONNECTIVITY_STATES, describe_age
from hub.contract import BUNDLE_STATES
from hub.html_text import e

PAGE_SIZE = 200
REFRESH_SECONDS = 5
NAV = (
    '<nav aria-label="views"><a href="/">Fleet</a><a href="/errors">Errors</a>'
    '<a href="/versions">Versions</a><a href="/history">History</a></nav>'
)


def _asset(name: str) -> str:
    """An inlined asset from hub/static: the page loads nothing from anywhere (air-gapped networks)."""
    return resources.files("hub").joinpath("static", name).read_text(encoding="utf-8")


INLINE_STYLE = _asset("page.css")
INLINE_SCRIPT = _asset("page.js").replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))


def layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} · Flotilla</title><style>{INLINE_STYLE}</style>"
        f'<noscript><meta http-equiv=refresh content="{REFRESH_SECONDS * 2}"></noscript></head><body>'
        '<header><a href="#main" class="skip">Skip to content</a><a href="/">Flotilla fleet status</a>'
        f"{NAV}</header>"
        '<main id="main" tabindex="-1">'
        f"{body}</main><script>{INLINE_SCRIPT}</script></body></html>"
    )


def badge(state: str, text: str | None = None) -> str:
    return f'<span class="badge {e(state, 32)}">{e(text or state, 300)}</span>'


def connectivity_badge(view: ClusterView) -> str:
    """Online is green; Stale and Offline say how old the last report is and what it said."""
    if view.connectivity == "Online":
        return badge("Online")
    age = describe_age(view.age_seconds)
    when = utc_stamp(view.summary.last_seen)
    text = f"{view.connectivity} · last report {age} ago"
    return f'<span title="last report {when}">{badge(view.connectivity, text)}</span>'


def health_badge(view: ClusterView) -> str:
    if view.connectivity == "Offline":  # never show a stale Ready as green
        return f'<span class="badge was">was {e(view.summary.health, 32)}</span>'
    return badge(view.summary.health)


_CARD_TITLES = {"Offline": "no report for too long", "Stale": "reports overdue"}


def _cards(summary: FleetSummary) -> str:
    """One card per display state, counted by the glance bar's rule (each cluster once: Offline or
    Stale first, otherwise its health), so the cards and the bar below them always agree."""
    cards = [
        f'<a class="card" href="/"><span>Clusters</span><b data-count="total">{summary.clusters}</b></a>'
    ]
    for state, count in summary.states.items():
        link = e("/?" + urlencode(state_query(state)))
        what = _CARD_TITLES.get(state, f"online, worst bundle {state}")
        cards.append(
            f'<a class="card {state}" href="{link}" title="{what}"><span>{state}</span>'
            f'<b data-count="state-{state}">{count}</b></a>'
        )
    note = (
        '<p class="muted" id="counting">Each cluster is counted once:'
        " Offline or Stale first, otherwise by its health.</p>"
    )
    return f'<div class="cards" id="summary">{"".join(cards)}</div>{note}'


def _options(name: str, values: Sequence[str], chosen: str) -> str:
    options = [f'<option value="">any {name}</option>']
    for value in values:
        selected = " selected" if value == chosen else ""
        options.append(f'<option value="{value}"{selected}>{value}</option>')
    return f'<select name="{name}" aria-label="{name}">{"".join(options)}</select>'


def _filter_form(params: Mapping[str, str]) -> str:
    return (
        '<form method="get" action="/" id="filters">'
        f'<input name="selector" placeholder="labels, e.g. region=eu,tier!=prod" size=32 '
        f'value="{e(params.get("selector", ""))}" aria-label="label selector">'
        f"{_options('health', BUNDLE_STATES, params.get('health', ''))}"
        f"{_options('connectivity', CONNECTIVITY_STATES, params.get('connectivity', ''))}"
        '<button type="submit">Filter</button> <a href="/">clear</a></form>'
    )


def label_list(labels: Mapping[str, str]) -> str:
    return "".join(f"<code>{e(k, 60)}={e(v, 60)}</code>" for k, v in sorted(labels.items())[:12])


def short_commit(commit: str | None) -> str:
    return f"<code>{e(commit[:12], 12)}</code>" if commit else '<span class="muted">—</span>'


def cluster_row(view: ClusterView) -> str:
    s = view.summary
    row_class = view.connectivity.lower()
    failing = [b.bundle for b in s.bundles if b.state not in ("Ready", "Paused")]  # paused on purpose
    detail = ", ".join(failing[:5]) + (" …" if len(failing) > 5 else "")
    return (
        f'<tr class="{row_class}" data-cluster="{e(s.name)}">'
        f'<td><a href="/clusters/{quote(s.name, safe="")}">{e(s.name)}</a></td>'
        f"<td>{health_badge(view)}</td><td>{connectivity_badge(view)}</td>"
        f"<td>{short_commit(s.commit)}</td><td>{len(s.bundles)}"
        f"{f' <span class=muted>not ready: {e(detail)}</span>' if detail else ''}</td>"
        f'<td class="labels">{label_list(s.labels)}</td><td>{e(s.agent_version, 40)}</td></tr>'
    )


def _nav(path: str, params: Mapping[str, str], page: int, pages: int) -> str:
    """Links to the first, last and nearby pages (never one link per page of a 100,000-cluster fleet)."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, page - 3), min(pages, page + 3) + 1)})
    links, previous = [], 0
    for number in shown:
        if number - previous > 1:
            links.append("…")
        query = urlencode({**{k: v for k, v in params.items() if k != "page"}, "page": str(number)})
        links.append(
            f"<b>{number}</b>" if number == page else f'<a href="{path}?{e(query, 2000)}">{number}</a>'
        )
        previous = number
    return f'<p class="pages">Page: {" ".join(links)}</p>'


def index_page(
    summary: FleetSummary,
    views: Sequence[ClusterView],
    total: int,
    params: Mapping[str, str],
    page: int,
    error: str = "",
    rollouts: str = "",
    top: str = "",
) -> str:
    """The fleet page: ``views`` is the one page (of PAGE_SIZE) of the ``total`` matching clusters."""
    pages = max(1, -(-total // PAGE_SIZE))
    rows = "".join(cluster_row(v) for v in views)
    problem = f'<p class="badge Failed">{e(error, 300)}</p>' if error else ""
    body = (
        f"<h1>Fleet</h1>{_cards(summary)}{rollouts}{top}{_filter_form(params)}{problem}"
        f'<p id="matching">{total} matching cluster{"s" if total != 1 else ""}</p>'
        "<table id=clusters><thead><tr><th>Cluster</th><th>Health</th><th>Connectivity</th><th>Commit</th>"
        f"<th>Bundles</th><th>Labels</th><th>Agent</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{_nav('/', params, min(page, pages), pages)}"
    )
    return layout("Fleet", body)


def bundle_href(name: str) -> str:
    """A bundle page's address; every character of the name is percent-encoded (``/`` included)."""
    return "/bundles/" + quote(name, safe="")


def utc_stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def bundle_page(r: Rollout, page: int = 1) -> str:
    """A bundle's rollout; ``r.placements`` is one page (of PAGE_SIZE) of its clusters, worst first."""
    groups = "".join(
        f"<tr><td>{short_commit(g.commit)}{' (target)' if g.commit == r.target_commit else ''}</td>"
        f"<td>{g.clusters}</td>"
        f"<td>{' '.join(badge(state, f'{state} {count}') for state, count in g.by_state.items())}</td></tr>"
        for g in r.by_commit[:50]
    )
    more_commits = (
        f"<p class=muted>{len(r.by_commit) - 50} more commits.</p>" if len(r.by_commit) > 50 else ""
    )
    rows = "".join(
        f'<tr class="{p.connectivity.lower()}">'
        f'<td><a href="/clusters/{quote(p.cluster, safe="")}">{e(p.cluster)}</a></td>'
        f"<td>{badge(p.state)}</td><td>{badge(p.connectivity)}</td><td>{short_commit(p.commit)}</td>"
        f"<td><code>{e(p.chart_version, 60)}</code></td></tr>"
        for p in r.placements
    )
    pages = max(1, -(-r.clusters // PAGE_SIZE))
    body = (
        f"<h1>Bundle {e(r.bundle)}</h1><p id=rollout><b>{e(rollout_sentence(r), 500)}</b></p>"
        f"<h2>By commit</h2><table id=commits><thead><tr><th>Commit</th><th>Clusters</th><th>States</th></tr>"
        f"</thead><tbody>{groups}</tbody></table>{more_commits}"
        "<h2>Clusters</h2><table id=placements><thead><tr><th>Cluster</th><th>State</th><th>Connectivity</th>"
        f"<th>Commit</th><th>Chart version</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{_nav(bundle_href(r.bundle), {}, min(page, pages), pages)}"
    )
    return layout(r.bundle, body)


def message_page(title: str, message: str) -> str:
    return layout(title, f"<h1>{e(title)}</h1><p>{e(message, 500)}</p>")
