"""Status page rendering: hostile agent strings are escaped and bounded; offline is never green."""

from __future__ import annotations

import re
from dataclasses import replace

from hub.aggregate import evaluate, fleet_summary
from hub.connectivity import Thresholds
from hub.contract import ResourceStatus
from hub.html_text import e
from hub.model import summarize
from hub.page_cluster import cluster_page
from hub.pages import index_page
from tests.unit.hub.factory import make_bundle, make_report

SCRIPT = "<script>alert('x')</script>"


def _hostile_report():  # type: ignore[no-untyped-def]
    long_message = "A" * 4000 + SCRIPT
    bundle = make_bundle(
        'web"><img src=x onerror=alert(1)>',
        "Failed",
        message=long_message,
        non_ready=[ResourceStatus("Pod", "apps", SCRIPT, "CrashLoopBackOff", "\u202egnp.exe " + SCRIPT)],
    )
    report = make_report(
        "edge-1",
        bundles=[bundle],
        labels={"region": SCRIPT, "zero\u200bwidth": "x" * 600},
        source_error=SCRIPT,
    )
    return replace(
        report, agent_image=SCRIPT, self_upgrade_from="registry/agent:0.3.0", self_upgrade_to=SCRIPT,
        self_upgrade_result="rolled back: " + SCRIPT,
    )  # fmt: skip


def test_hostile_report_renders_escaped_and_bounded() -> None:
    report = _hostile_report()
    view = evaluate([summarize(report, 100.0)], 100.0, Thresholds())[0]
    pages = [
        cluster_page(view, report),
        index_page(fleet_summary([view]), [view], 1, {"selector": SCRIPT}, 1),
    ]
    for page in pages:
        assert "<script>alert" not in page
        assert "<img" not in page
        assert "\u202e" not in page
        assert "\u200b" not in page
        assert len(re.findall(r"<script>", page)) == 1  # only the page's own refresh script
    detail = pages[0]
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in detail
    assert "x" * 600 not in pages[1]  # label values are bounded on the page
    assert "<pre>" + "A" * 4000 in detail  # the last error verbatim, in a <pre>
    # the agent's image and last self-upgrade, escaped like the rest
    upgrade = re.search(r'<p id="agent-upgrade">(.*?)</p>', detail)
    assert upgrade is not None
    assert "registry/agent:0.3.0" in upgrade.group(1)
    assert "rolled back: &lt;script&gt;" in upgrade.group(1)


def test_e_bounds_and_marks_the_cut() -> None:
    assert e("x" * 50, 10) == "x" * 10 + "… (40 more characters)"
    assert e("a\x00b") == "a\ufffdb"


def test_offline_cluster_is_never_shown_green() -> None:
    report = make_report("edge-1", bundles=[make_bundle("web", "Ready")], interval_seconds=60)
    view = evaluate([summarize(report, 0.0)], 3 * 3600.0, Thresholds())[0]
    page = index_page(fleet_summary([view]), [view], 1, {}, 1)
    row = page[page.index('data-cluster="edge-1"') :]
    row = row[: row.index("</tr>")]
    assert "Offline · last report 3h ago" in row
    assert "was Ready" in row
    assert 'class="badge Ready"' not in row
    assert 'class="offline"' in page
