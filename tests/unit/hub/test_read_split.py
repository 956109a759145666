"""Reads apart from ingest: which process a connection goes to (pure), and how a reader process's
read model follows the writer's commits on a real SQLite database (hub.readsync)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from hub import cli
from hub.connectivity import Thresholds
from hub.context import HubConfig
from hub.database import Database
from hub.dispatch import MAIN, PEEK_BYTES, READER, route
from hub.limits import Limits
from hub.model import ClusterSummary, summarize, summary_to_json
from hub.readmodel import ReadModel
from hub.readproc import settings_from, settings_message
from hub.readsync import CommitCounter, Follower
from hub.replicas import ReplicaSync
from hub.reportstore import Pending, Retention
from tests.unit.hub.factory import make_report


@pytest.mark.parametrize(
    ("head", "where"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", READER),
        (b"GET /api/v1/bundles?page=2 HTTP/1.1\r\n", READER),
        (b"HEAD /clusters/edge-1 HTTP/1.1\r\n", READER),
        (b"GET /healthz HTTP/1.1\r\n", MAIN),  # the main process's own health
        (b"GET /metrics HTTP/1.1\r\n", MAIN),
        (b"GET /healthz?verbose=1 HTTP/1.1\r\n", MAIN),
        (b"GET /healthzx HTTP/1.1\r\n", READER),
        (b"POST /api/v1/reports HTTP/1.1\r\n", MAIN),
        (b"POST", MAIN),  # no need to wait for more: not a read
        (b"PUT / HTTP/1.1\r\n", MAIN),
        (b"\x16\x03\x01\x02\x00", MAIN),  # TLS or garbage: uvicorn answers it here
        (b"GE", None),  # a request line in pieces: wait for the rest
        (b"GET /api/v1/clus", None),
        (b"GET /" + b"a" * PEEK_BYTES, READER),  # a huge path is a read, however it ends
    ],
)
def test_a_connection_goes_where_its_first_request_line_says(head: bytes, where: str | None) -> None:
    assert route(head) == where


def test_the_commit_counter_is_shared_through_its_descriptor() -> None:
    writer = CommitCounter()
    reader = CommitCounter(writer.fd)  # the reader process maps the descriptor it was given
    assert reader.value() == 0
    writer.bump()
    writer.bump()
    assert reader.value() == 2
    reader._map.close()  # the same descriptor: close it once
    writer.close()


def _pending(name: str, sequence: int) -> Pending:
    report = make_report(name, sequence)
    summary = summarize(report, time.time())
    return Pending(report, report.to_json().encode(), time.time(), summary, summary_to_json(summary))


def test_a_follower_sees_each_commit_before_the_next_read_and_no_more_queries_otherwise(
    tmp_path: Path,
) -> None:
    database = Database(data_dir=tmp_path)
    writer_conn = database.connect(writer=True)
    counter = CommitCounter()
    follower_conn = database.connect()
    sync = ReplicaSync(follower_conn, "reader", time.time)
    model = ReadModel(Thresholds(), follower_conn.load_summaries(), time.time())
    sync.attach(model)
    follower = Follower(sync, counter)
    assert follower.behind()  # the first read always looks (commits made during the load)
    follower.catch_up()
    assert not follower.behind()

    current: dict[str, ClusterSummary] = {}  # the writer's read model decides what is late

    def commit(*reports: tuple[str, int]) -> None:
        batch = [_pending(name, seq) for name, seq in reports]
        for outcome in writer_conn.write_batch(batch, current, (), Retention()):
            if outcome.summary is not None:
                current[outcome.summary.name] = outcome.summary
        counter.bump()  # what the writer thread does after each commit

    commit(("edge-1", 1), ("edge-2", 1))
    assert follower.behind()
    follower.catch_up()
    assert {s.name: s.sequence for s in model.snapshot()} == {"edge-1": 1, "edge-2": 1}
    commit(("edge-1", 5))
    commit(("edge-1", 3))  # late: only last_seen moves, the current report stays 5
    follower.catch_up()
    assert model.current("edge-1").sequence == 5  # type: ignore[union-attr]
    assert not follower.behind()
    before = sync.applied
    follower.catch_up()  # nothing new: no query, nothing applied
    assert sync.applied == before
    follower.close()
    writer_conn.close()


def test_a_restarted_writer_continues_the_change_stamps(tmp_path: Path) -> None:
    """A reader must not miss the first commits of a writer that started again on the same data."""
    database = Database(data_dir=tmp_path)
    first = database.connect(writer=True)
    first.write_batch([_pending("edge-1", 1)], {}, (), Retention())
    first.close()
    reader = database.connect()
    _, mark = reader.changes_since(None, "reader")
    second = database.connect(writer=True)
    second.write_batch([_pending("edge-1", 2)], {}, (), Retention())
    changes, _ = reader.changes_since(mark, "reader")
    assert [(c.name, c.sequence) for c in changes] == [("edge-1", 2)]
    second.close()
    reader.close()


def test_a_reader_process_gets_the_same_settings_as_the_main_process() -> None:
    config = HubConfig(
        data_dir=Path("/var/lib/hub"),
        database_url="postgresql://hub:s3cret@db/fleet",
        public_read=True,
        thresholds=Thresholds(2.0, 7.0),
        max_body=4096,
        retention=Retention(10, 3.0, 2),
        read_cache_seconds=0.5,
        rollout_view_seconds=2.0,
    )
    limits = Limits(max_connections=50, header_seconds=3.0, idle_seconds=4.0)
    name, again, limits_again = settings_from(settings_message(config, limits, "reader-2"))
    assert (name, limits_again) == ("reader-2", limits)
    assert replace(again, clock=config.clock) == config


def test_a_negative_number_of_read_processes_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["serve", "--data-dir", str(tmp_path), "--read-processes", "-1"]) == 2
    assert "--read-processes must be 0 or more" in capsys.readouterr().err
