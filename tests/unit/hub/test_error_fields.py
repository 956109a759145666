"""The hub's cluster page shows each error the agent reported in its own field, escaped."""

from __future__ import annotations

import dataclasses

from hub.aggregate import evaluate
from hub.connectivity import Thresholds
from hub.contract import ErrorFields, parse_report
from hub.model import summarize
from hub.page_cluster import cluster_page
from tests.unit.hub.factory import make_report


def test_source_and_cluster_api_errors_are_shown_apart_and_the_cluster_is_failed() -> None:
    report = dataclasses.replace(
        make_report("edge-1", bundles=[], source_error="git: connection refused"),
        errors=ErrorFields(source="git: connection refused", cluster_api="<b>API</b> down"),
    )
    report = parse_report(report.to_json())  # what the hub stores is what it parsed
    view = evaluate([summarize(report, 100.0)], 100.0, Thresholds())[0]
    page = cluster_page(view, report)
    assert "<b>source</b></p><pre>git: connection refused</pre>" in page
    assert "<b>cluster API</b></p><pre>&lt;b&gt;API&lt;/b&gt; down</pre>" in page
    assert report.health == "Failed"


def test_a_report_from_an_older_agent_shows_its_source_error_as_before() -> None:
    report = make_report("edge-1", source_error="git: timeout")
    view = evaluate([summarize(report, 100.0)], 100.0, Thresholds())[0]
    assert "<b>source</b></p><pre>git: timeout</pre>" in cluster_page(view, report)
