"""Accepted reports in SQLite: group commits, bounded history, and the summaries a restart loads.

Bodies are stored zlib-compressed (a 7 KB report takes about 1 KB); a body that starts with ``{``
is an uncompressed one written by an older hub. History is bounded per cluster by count and by
age (:class:`Retention`); the current report of a cluster is always kept.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import structlog

from hub.contract import ContractError, StatusReport, parse_report
from hub.database import Change
from hub.model import ClusterSummary, HistoryEntry, summarize, summary_from_json
from hub.report_facts import ReportFacts
from hub.store import transaction

log = structlog.get_logger("hub.store")


@dataclass(frozen=True, slots=True)
class Retention:
    """History kept per cluster: at most ``reports`` reports, none older than ``days`` (but the current);
    only the newest ``bodies`` of them keep their full body, older entries keep sequence, time,
    health and commit (about 100 bytes instead of 1-3 KB)."""

    reports: int = 50
    days: float = 14.0
    bodies: int = 3

    def __post_init__(self) -> None:
        if self.reports < 1 or self.days <= 0 or self.bodies < 1:
            raise ValueError("retention must keep at least 1 report, 1 body and a positive number of days")


@dataclass(frozen=True, slots=True)
class Pending:
    """A validated report waiting to be written (everything CPU-heavy done by the request handler)."""

    report: ReportFacts  # a StatusReport, or the fast path's struct (hub.fast_contract)
    body: bytes  # the JSON document as received (the writer compresses it: see :func:`pack`)
    received_at: float
    summary: ClusterSummary
    summary_json: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one pending report: ``current``, ``late`` (older than current) or ``duplicate``."""

    result: str
    summary: ClusterSummary | None  # the new current summary when result == "current"


def pack(body: bytes) -> bytes:
    return zlib.compress(body, 1)


def unpack(stored: bytes) -> bytes:
    """The JSON body of a stored report (b"" when only its history entry is kept)."""
    return stored if not stored or stored[:1] == b"{" else zlib.decompress(stored)


def write_batch(
    conn: sqlite3.Connection,
    batch: Sequence[Pending],
    current: dict[str, ClusterSummary],
    prune: Iterable[str] = (),
    retention: Retention | None = None,
    stamp: int = 0,
) -> list[Outcome]:
    """Store a batch in one transaction (group commit) and say what happened to each report.

    ``current`` maps cluster names to their current summaries; it is read, not modified: the
    caller applies the outcomes once the transaction has committed. The history of the clusters in
    ``prune`` is cut back to the retention. Every cluster row the batch changes gets ``stamp``
    (increasing per batch), which is how a reader process finds what changed (:func:`changed_since`).
    """
    retention = retention or Retention()
    outcomes: list[Outcome] = []
    newest: dict[str, ClusterSummary] = {}
    with transaction(conn):
        for item in batch:
            name = item.report.cluster
            outcomes.append(_write_one(conn, item, newest.get(name) or current.get(name), stamp))
            last = outcomes[-1].summary
            if last is not None:
                newest[last.name] = last
        if prune:
            cutoff = max(item.received_at for item in batch) - retention.days * 86400
            prune_history(conn, prune, retention, cutoff)
    return outcomes


def _write_one(
    conn: sqlite3.Connection, item: Pending, current: ClusterSummary | None, stamp: int
) -> Outcome:
    report = item.report
    inserted = conn.execute(
        "INSERT OR IGNORE INTO reports (cluster, sequence, received_at, body, health, commit_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            report.cluster,
            report.sequence,
            item.received_at,
            pack(item.body),
            item.summary.health,
            item.summary.commit,
        ),
    ).rowcount
    if not inserted or (current is not None and report.sequence < current.sequence):
        # a sign of life that leaves the state as it is: stored, so readers and a restart see it too
        conn.execute(
            "UPDATE clusters SET last_seen = ?, changed = ? WHERE name = ? AND last_seen < ?",
            (item.received_at, stamp, report.cluster, item.received_at),
        )
        return Outcome("late" if inserted else "duplicate", None)
    conn.execute(
        "INSERT INTO clusters (name, sequence, reported_at, last_seen, summary, changed)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(name) DO UPDATE SET sequence = excluded.sequence, reported_at = excluded.reported_at,"
        " last_seen = max(last_seen, excluded.last_seen), summary = excluded.summary,"
        " changed = excluded.changed",
        (report.cluster, report.sequence, item.received_at, item.received_at, item.summary_json, stamp),
    )
    return Outcome("current", item.summary)


def prune_history(
    conn: sqlite3.Connection, clusters: Iterable[str], retention: Retention, cutoff: float
) -> int:
    """Cut the history of ``clusters`` back to the retention (never the current report); rows deleted."""
    deleted = 0
    for cluster in clusters:
        deleted += conn.execute(
            "DELETE FROM reports WHERE cluster = ?1 AND sequence < (SELECT sequence FROM reports"
            " WHERE cluster = ?1 ORDER BY sequence DESC LIMIT 1 OFFSET ?2)",
            (cluster, retention.reports - 1),
        ).rowcount
        deleted += conn.execute(
            "DELETE FROM reports WHERE cluster = ?1 AND received_at < ?2"
            " AND sequence < (SELECT sequence FROM clusters WHERE name = ?1)",
            (cluster, cutoff),
        ).rowcount
        conn.execute(
            "UPDATE reports SET body = x'' WHERE cluster = ?1 AND length(body) > 0 AND sequence <"
            " (SELECT sequence FROM reports WHERE cluster = ?1 ORDER BY sequence DESC LIMIT 1 OFFSET ?2)",
            (cluster, retention.bodies - 1),
        )
    return deleted


def purge_cluster(conn: sqlite3.Connection, name: str) -> None:
    """Delete whatever is left of a forgotten cluster (reports that were in flight when it was forgotten)."""
    with transaction(conn):
        conn.execute("DELETE FROM clusters WHERE name = ?", (name,))
        conn.execute("DELETE FROM reports WHERE cluster = ?", (name,))


def load_summaries(conn: sqlite3.Connection) -> list[ClusterSummary]:
    """Every cluster's current summary, from its stored compact form (or, for rows an older hub
    wrote, from the current report). A cluster whose stored state no longer passes the contract is
    left out and logged: `flotilla-hub cluster forget NAME` removes it, its next report replaces it."""
    summaries = []
    rows = conn.execute("SELECT name, sequence, reported_at, last_seen, summary FROM clusters")
    for name, sequence, reported_at, last_seen, compact in rows:
        try:
            if compact is not None:
                summaries.append(summary_from_json(compact, reported_at, last_seen))
                continue
            report = load_report(conn, name, sequence, strict=True)
            if report is not None:
                summary = summarize(report, reported_at)
                summaries.append(replace(summary, last_seen=max(last_seen, reported_at)))
        except (ContractError, ValueError, TypeError, zlib.error) as exc:
            log.warning(
                "cluster_unreadable", cluster=name, error=str(exc)[:300], fix="flotilla-hub cluster forget"
            )
    return summaries


def load_report(
    conn: sqlite3.Connection, cluster: str, sequence: int, *, strict: bool = False
) -> StatusReport | None:
    row = conn.execute(
        "SELECT body FROM reports WHERE cluster = ? AND sequence = ?", (cluster, sequence)
    ).fetchone()
    if row is None:
        return None
    if not row[0]:
        return None
    try:
        return parse_report(unpack(row[0]))
    except (ContractError, zlib.error):
        if strict:
            raise
        return None


def history(conn: sqlite3.Connection, cluster: str, limit: int = 100) -> list[HistoryEntry]:
    """The stored reports of ``cluster``, newest first."""
    rows = conn.execute(
        "SELECT sequence, received_at, health, commit_id FROM reports WHERE cluster = ?"
        " ORDER BY sequence DESC LIMIT ?",
        (cluster, limit),
    )
    return [HistoryEntry(int(seq), float(at), health, commit) for seq, at, health, commit in rows]


def last_stamp(conn: sqlite3.Connection) -> int:
    """The highest change stamp stored (0 for a database no batch has changed yet)."""
    return int(conn.execute("SELECT coalesce(max(changed), 0) FROM clusters").fetchone()[0])


def changed_since(conn: sqlite3.Connection, stamp: int) -> tuple[list[Change], int]:
    """The cluster rows changed by batches after ``stamp``, and the stamp to ask from next time.

    One writer stamps its batches in commit order and a read sees whole transactions, so asking
    from the highest stamp seen never misses a row."""
    rows = conn.execute(
        "SELECT name, sequence, reported_at, last_seen, summary, changed FROM clusters"
        " WHERE changed > ? ORDER BY changed",
        (stamp,),
    ).fetchall()
    changes = [Change(name, seq, at, seen, summary or b"") for name, seq, at, seen, summary, _ in rows]
    return changes, max([stamp, *(row[5] for row in rows)])


def count_reports(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
