"""A duplicate or late report is a sign of life: its arrival is stored with the cluster, not kept only
in the writer's memory, so a reader process, another replica and a restarted hub all see the
cluster as recently seen, while its state stays the newest report's."""

from __future__ import annotations

from hub.database import Database
from hub.model import summarize, summary_to_json
from hub.reportstore import Pending, Retention
from tests.integration.hub.conftest import BOTH_BACKENDS
from tests.unit.hub.factory import make_bundle, make_report


def pending(sequence: int, state: str, received_at: float) -> Pending:
    report = make_report("edge-1", sequence, [make_bundle("web", state)])
    summary = summarize(report, received_at)
    return Pending(report, report.to_json().encode(), received_at, summary, summary_to_json(summary))


@BOTH_BACKENDS
def test_duplicate_and_late_reports_move_the_stored_last_seen_and_nothing_else(database: Database) -> None:
    store = database.connect(writer=True, replica="a")
    other = database.connect(replica="b")  # a reader process, or another replica
    try:
        first = store.write_batch([pending(5, "Ready", 1_000.0)], {}, (), Retention())
        assert [o.result for o in first] == ["current"]
        _, mark = other.changes_since(None, "b")
        held = {"edge-1": first[0].summary}
        results = [
            o.result
            for item in (
                pending(3, "Failed", 1_060.0),
                pending(5, "Failed", 1_120.0),
                pending(5, "Failed", 1_090.0),
            )
            for o in store.write_batch([item], held, (), Retention())  # type: ignore[arg-type]
        ]
        assert results == ["late", "duplicate", "duplicate"]
        changes, _ = other.changes_since(mark, "b")
    finally:
        store.close()
        other.close()
    assert [(c.name, c.sequence, c.last_seen) for c in changes] == [("edge-1", 5, 1_120.0)]

    reopened = database.connect()
    try:
        (summary,) = reopened.load_summaries()
    finally:
        reopened.close()
    assert (summary.sequence, summary.health, summary.last_seen) == (5, "Ready", 1_120.0)  # never moved back
