"""One cluster's status page: its agent, its source and signature, its bundles with the resources
not ready or modified, and its recent reports (pure: views and reports in, HTML out)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from hub.aggregate import ClusterView
from hub.connectivity import describe_age
from hub.contract import BundleStatus, ResourceStatus, StatusReport
from hub.html_text import e
from hub.model import HistoryEntry
from hub.pages import (
    badge,
    bundle_href,
    connectivity_badge,
    health_badge,
    label_list,
    layout,
    short_commit,
    utc_stamp,
)


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
        f"<td>applied {short_commit(b.applied_commit)}<br>desired {short_commit(b.desired_commit)}</td>"
        f"<td>{e(b.chart, 120)} <code>{e(b.chart_version, 60)}</code>"
        f"<div class=muted>helm rev {revision}</div></td>"
        f"<td>{b.resources_ready}/{b.resources_total}</td>"
        f"<td>{_resources('Not ready', b.non_ready)}{_resources('Modified', b.modified)}{message}</td></tr>"
    )


def _history(entries: Sequence[HistoryEntry]) -> str:
    if not entries:
        return ""
    rows = "".join(
        f"<tr><td>#{h.sequence}</td><td>{e(utc_stamp(h.received_at), 40)}</td>"
        f"<td>{badge(h.health) if h.health else '—'}</td><td>{short_commit(h.commit)}</td></tr>"
        for h in entries
    )
    return (
        "<h2>Recent reports</h2><table id=history><thead><tr><th>Report</th><th>Received</th><th>Health</th>"
        f"<th>Commit</th></tr></thead><tbody>{rows}</tbody></table>"
    )


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
        f'<p class="labels">{label_list(s.labels)}</p>'
        f"<p>Agent {e(s.agent_version, 40)}{machine}, reporting every {s.interval_seconds}s; "
        f"report #{s.sequence}, "
        f"last heard {describe_age(view.age_seconds)} ago ({utc_stamp(s.last_seen)}). "
        f'<a href="/clusters/{quote(s.name, safe="")}/history">History</a></p>'
    )
    if report is None:
        return layout(s.name, head + "<p>The current report is not available.</p>" + _history(history))
    head += _agent_upgrade(report)
    src = report.source
    source = (
        f"<h2>Source</h2><p><code>{e(src.url, 300)}</code> ref <code>{e(src.ref, 100)}</code>: "
        f"desired {short_commit(src.desired_commit)}, applied {short_commit(src.applied_commit)}</p>"
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
