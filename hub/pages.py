"""Server-rendered HTML for the status page: pure functions from views to strings, no external assets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from urllib.parse import quote, urlencode

from hub.aggregate import ClusterView, FleetSummary, Rollout, rollout_sentence
from hub.connectivity import CONNECTIVITY_STATES, describe_age
from hub.contract import BUNDLE_STATES, BundleStatus, ResourceStatus, StatusReport
from hub.html_text import e
from hub.model import HistoryEntry

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
    when = _stamp(view.summary.last_seen)
    text = f"{view.connectivity} · last report {age} ago"
    return f'<span title="last report {when}">{badge(view.connectivity, text)}</span>'


def health_badge(view: ClusterView) -> str:
    if view.connectivity == "Offline":  # never show a stale Ready as green
        return f'<span class="badge was">was {e(view.summary.health, 32)}</span>'
    return badge(view.summary.health)


def _cards(summary: FleetSummary) -> str:
    cards = [
        f'<a class="card" href="/"><span>Clusters</span><b data-count="total">{summary.clusters}</b></a>',
        f'<a class="card Ready" href="/?health=Ready&amp;connectivity=Online"><span>Ready &amp; online</span>'
        f'<b data-count="ready-online">{summary.ready_and_online}</b></a>',
    ]
    for state, count in summary.by_health.items():
        cards.append(
            f'<a class="card {state}" href="/?health={state}"><span>{state}</span>'
            f'<b data-count="health-{state}">{count}</b></a>'
        )
    for state, count in summary.by_connectivity.items():
        cards.append(
            f'<a class="card {state}" href="/?connectivity={state}"><span>{state}</span>'
            f'<b data-count="connectivity-{state}">{count}</b></a>'
        )
    return f'<div class="cards" id="summary">{"".join(cards)}</div>'


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


def _labels(labels: Mapping[str, str]) -> str:
    return "".join(f"<code>{e(k, 60)}={e(v, 60)}</code>" for k, v in sorted(labels.items())[:12])


def _short(commit: str | None) -> str:
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
        f"<td>{_short(s.commit)}</td><td>{len(s.bundles)}"
        f"{f' <span class=muted>not ready: {e(detail)}</span>' if detail else ''}</td>"
        f'<td class="labels">{_labels(s.labels)}</td><td>{e(s.agent_version, 40)}</td></tr>'
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


def _resources(title: str, resources: Sequence[ResourceStatus]) -> str:
    if not resources:
        return ""
    items = "".join(
        f"<li><code>{e(r.kind, 80)}/{e(r.namespace, 80)}/{e(r.name, 120)}</code> {e(r.status, 80)}"
        f"{f': {e(r.message, 1000)}' if r.message else ''}</li>"
        for r in resources
    )
    return f"<div>{title}:<ul>{items}</ul></div>"


def _bundle_row(b: BundleStatus) -> str:
    revision = "—" if b.helm_revision is None else str(b.helm_revision)
    message = f"<pre>{e(b.message, 4096)}</pre>" if b.message else ""
    return (
        f'<tr data-bundle="{e(b.bundle)}"><td><a href="{bundle_href(b.bundle)}">{e(b.bundle)}</a>'
        f'<div class="muted">{e(b.namespace)}/{e(b.release)}</div></td>'
        f"<td>{badge(b.state)}<div class=muted>since {e(b.last_transition, 40)}</div></td>"
        f"<td>applied {_short(b.applied_commit)}<br>desired {_short(b.desired_commit)}</td>"
        f"<td>{e(b.chart, 120)} <code>{e(b.chart_version, 60)}</code>"
        f"<div class=muted>helm rev {revision}</div></td>"
        f"<td>{b.resources_ready}/{b.resources_total}</td>"
        f"<td>{_resources('Not ready', b.non_ready)}{_resources('Modified', b.modified)}{message}</td></tr>"
    )


def bundle_href(name: str) -> str:
    """A bundle page's address; every character of the name is percent-encoded (``/`` included)."""
    return "/bundles/" + quote(name, safe="")


def _history(entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td>#{h.sequence}</td><td>{e(_stamp(h.received_at), 40)}</td>"
        f"<td>{badge(h.health) if h.health else '—'}</td><td>{_short(h.commit)}</td></tr>"
        for h in entries
    )
    return (
        "<h2>Recent reports</h2><table id=history><thead><tr><th>Report</th><th>Received</th><th>Health</th>"
        f"<th>Commit</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _agent_upgrade(report: StatusReport) -> str:
    """The agent's image and its last self-upgrade (from, to, result), when it reports them."""
    parts = []
    if report.agent_image:
        parts.append(f"Image <code>{e(report.agent_image, 300)}</code>.")
    if report.self_upgrade_to or report.self_upgrade_result:
        parts.append(
            f"Last self-upgrade: <code>{e(report.self_upgrade_from or '?', 300)}</code> → "
            f"<code>{e(report.self_upgrade_to or '?', 300)}</code>: {e(report.self_upgrade_result, 300)}"
        )
    return f'<p id="agent-upgrade">{" ".join(parts)}</p>' if parts else ""


def cluster_page(view: ClusterView, report: StatusReport | None, history: Sequence[HistoryEntry] = ()) -> str:
    s = view.summary
    machine = f" on {e(s.agent_arch, 40)}" if s.agent_arch else ""
    head = (
        f"<h1>Cluster {e(s.name)} {health_badge(view)} {connectivity_badge(view)}</h1>"
        f'<p class="labels">{_labels(s.labels)}</p>'
        f"<p>Agent {e(s.agent_version, 40)}{machine}, reporting every {s.interval_seconds}s; "
        f"report #{s.sequence}, "
        f"last heard {describe_age(view.age_seconds)} ago ({_stamp(s.last_seen)}). "
        f'<a href="/clusters/{quote(s.name, safe="")}/history">History</a></p>'
    )
    if report is None:
        return layout(s.name, head + "<p>The current report is not available.</p>" + _history(history))
    head += _agent_upgrade(report)
    src = report.source
    source = (
        f"<h2>Source</h2><p><code>{e(src.url, 300)}</code> ref <code>{e(src.ref, 100)}</code>: "
        f"desired {_short(src.desired_commit)}, applied {_short(src.applied_commit)}</p>"
    )
    if src.signature:
        signer = f" signed by {e(src.signature_signer, 300)}" if src.signature_signer else ""
        why = f": {e(src.signature_reason, 1000)}" if src.signature_reason else ""
        source += (
            f'<p class="signature">Signature of {e(src.signature_commit, 100)}: '
            f"<strong>{e(src.signature, 20)}</strong>{signer}{why}</p>"
        )
    errors = report.errors.items() or ([("source", src.error)] if src.error else [])
    source += "".join(
        f"<p class=error-field><b>{e(label)}</b></p><pre>{e(text, 4096)}</pre>" for label, text in errors
    )
    if src.errors:
        source += (
            "<ul>"
            + "".join(
                f"<li><code>{e(p.file, 200)}{f':{p.line}' if p.line is not None else ''}</code> "
                f"{e(p.message, 1000)}</li>"
                for p in src.errors
            )
            + "</ul>"
        )
    rows = "".join(_bundle_row(b) for b in report.bundles) or "<tr><td colspan=6>No bundles.</td></tr>"
    bundles = (
        "<h2>Bundles</h2><table id=bundles><thead><tr><th>Bundle</th><th>State</th><th>Commit</th>"
        "<th>Chart</th>"
        f"<th>Ready</th><th>Details</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return layout(s.name, head + source + bundles + _history(history))


def bundle_page(r: Rollout, page: int = 1) -> str:
    """A bundle's rollout; ``r.placements`` is one page (of PAGE_SIZE) of its clusters, worst first."""
    groups = "".join(
        f"<tr><td>{_short(g.commit)}{' (target)' if g.commit == r.target_commit else ''}</td>"
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
        f"<td>{badge(p.state)}</td><td>{badge(p.connectivity)}</td><td>{_short(p.commit)}</td>"
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
