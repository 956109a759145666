"""Accepted reports in PostgreSQL: group commits that several hub replicas may run at once.

A batch is one transaction: lock the batch's cluster rows (in name order, so two replicas never
deadlock), insert the reports (a (cluster, sequence) already stored is a duplicate), then move each
cluster's current state forward. The database, not a replica's memory, decides what is current
or late, since another replica may have stored a newer report a moment ago.

What other replicas committed is read back by :func:`changes_since` (see ``hub.pg_schema``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import structlog

from hub.contract import ContractError, StatusReport, parse_report
from hub.database import Change
from hub.model import ClusterSummary, HistoryEntry, summary_from_json
from hub.reportstore import Outcome, Pending, Retention, pack, unpack

log = structlog.get_logger("hub.store")

Conn = psycopg.Connection[tuple[Any, ...]]

# The batch statements send their arrays in binary (%b): compressed bodies go as they are, not as
# hex text, which halves the writer's CPU per report.

_INSERT_REPORTS = (
    "INSERT INTO reports (cluster, sequence, received_at, body, health, commit_id)"
    " SELECT * FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::bytea[], %b::text[], %b::text[])"
    " ON CONFLICT DO NOTHING RETURNING cluster, sequence"
)
_UPSERT_CURRENT = (
    "INSERT INTO clusters (name, sequence, reported_at, last_seen, summary, tx, writer)"
    " SELECT n, s, r, l, j, pg_current_xact_id(), %b"
    " FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::float8[], %b::bytea[]) AS v(n, s, r, l, j)"
    " ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence, reported_at = excluded.reported_at,"
    " last_seen = greatest(clusters.last_seen, excluded.last_seen), summary = excluded.summary,"
    " tx = excluded.tx, writer = excluded.writer"
)
_TOUCH = (
    "UPDATE clusters SET last_seen = greatest(last_seen, v.l), tx = pg_current_xact_id(), writer = %b"
    " FROM unnest(%b::text[], %b::float8[]) AS v(n, l) WHERE name = v.n AND last_seen < v.l"
)


def write_batch(
    conn: Conn, batch: Sequence[Pending], prune: Iterable[str], retention: Retention, writer: str
) -> list[Outcome]:
    """Store a batch in one transaction and say what happened to each report (as ``hub.reportstore``)."""
    names = sorted({item.report.cluster for item in batch})
    rows = sorted(
        {(i.report.cluster, i.report.sequence): i for i in reversed(batch)}.values(),
        key=lambda i: (i.report.cluster, i.report.sequence),
    )
    with conn.transaction():
        stored: dict[str, int] = dict(
            conn.execute(
                "SELECT name, sequence FROM clusters WHERE name = ANY(%s) ORDER BY name FOR UPDATE", (names,)
            ).fetchall()
        )
        columns = (
            [i.report.cluster for i in rows],
            [i.report.sequence for i in rows],
            [i.received_at for i in rows],
            [pack(i.body) for i in rows],
            [i.summary.health for i in rows],
            [i.summary.commit for i in rows],
        )
        inserted = set(conn.execute(_INSERT_REPORTS, columns).fetchall())
        outcomes: list[Outcome] = []
        newest: dict[str, Pending] = {}
        seen: dict[str, float] = {}
        for item in batch:
            key = (item.report.cluster, item.report.sequence)
            if key not in inserted:
                outcomes.append(Outcome("duplicate", None))
                continue
            inserted.discard(key)  # the same report twice in one batch: the second is a duplicate
            name = item.report.cluster
            seen[name] = max(seen.get(name, 0.0), item.received_at)
            top = newest[name].report.sequence if name in newest else stored.get(name)
            if top is not None and item.report.sequence < top:
                outcomes.append(Outcome("late", None))
                continue
            newest[name] = item
            outcomes.append(Outcome("current", item.summary))
        _store_current(conn, newest, seen, writer)
        if prune:
            prune_history(conn, prune, retention, max(i.received_at for i in batch) - retention.days * 86400)
    return outcomes


def _store_current(conn: Conn, newest: dict[str, Pending], seen: dict[str, float], writer: str) -> None:
    current = sorted(newest.values(), key=lambda i: i.report.cluster)
    if current:
        conn.execute(
            _UPSERT_CURRENT,
            (
                writer,
                [i.report.cluster for i in current],
                [i.report.sequence for i in current],
                [i.received_at for i in current],
                [seen[i.report.cluster] for i in current],
                [i.summary_json for i in current],
            ),
        )
    late = sorted(name for name in seen if name not in newest)
    if late:
        conn.execute(_TOUCH, (writer, late, [seen[name] for name in late]))


_RANKED = (
    "(SELECT cluster, sequence, row_number() OVER (PARTITION BY cluster ORDER BY sequence DESC) AS rank"
    " FROM reports WHERE cluster = ANY(%s)) AS old"
)


def prune_history(conn: Conn, clusters: Iterable[str], retention: Retention, cutoff: float) -> int:
    """Cut the history of ``clusters`` back to the retention (never the current report); rows deleted."""
    names = sorted(clusters)
    if not names:
        return 0
    deleted = conn.execute(
        f"DELETE FROM reports r USING {_RANKED} WHERE r.cluster = old.cluster"  # noqa: S608
        " AND r.sequence = old.sequence AND old.rank > %s",
        (names, retention.reports),
    ).rowcount
    deleted += conn.execute(
        "DELETE FROM reports r USING clusters c WHERE r.cluster = ANY(%s) AND c.name = r.cluster"
        " AND r.received_at < %s AND r.sequence < c.sequence",
        (names, cutoff),
    ).rowcount
    conn.execute(
        f"UPDATE reports r SET body = ''::bytea FROM {_RANKED} WHERE r.cluster = old.cluster"  # noqa: S608
        " AND r.sequence = old.sequence AND old.rank > %s AND length(r.body) > 0",
        (names, retention.bodies),
    )
    return deleted


def purge_cluster(conn: Conn, name: str) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM clusters WHERE name = %s", (name,))
        conn.execute("DELETE FROM reports WHERE cluster = %s", (name,))


def _summary(name: str, reported_at: float, last_seen: float, compact: bytes) -> ClusterSummary | None:
    try:
        return summary_from_json(compact, reported_at, last_seen)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning(
            "cluster_unreadable", cluster=name, error=str(exc)[:300], fix="flotilla-hub cluster forget"
        )
        return None


def load_summaries(conn: Conn) -> list[ClusterSummary]:
    """Every cluster's current summary (unreadable ones are logged and left out, as with SQLite)."""
    summaries = []
    with conn.cursor(binary=True) as cursor:
        for name, reported_at, last_seen, compact in cursor.execute(
            "SELECT name, reported_at, last_seen, summary FROM clusters"
        ):
            summary = _summary(name, reported_at, last_seen, compact)
            if summary is not None:
                summaries.append(summary)
    return summaries


def load_report(conn: Conn, cluster: str, sequence: int) -> StatusReport | None:
    row = conn.execute(
        "SELECT body FROM reports WHERE cluster = %s AND sequence = %s", (cluster, sequence)
    ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        return parse_report(unpack(bytes(row[0])))
    except (ContractError, zlib.error):
        return None


def history(conn: Conn, cluster: str, limit: int) -> list[HistoryEntry]:
    rows = conn.execute(
        "SELECT sequence, received_at, health, commit_id FROM reports WHERE cluster = %s"
        " ORDER BY sequence DESC LIMIT %s",
        (cluster, limit),
    )
    return [HistoryEntry(int(seq), float(at), health, commit) for seq, at, health, commit in rows]


def changes_since(conn: Conn, mark: str | None, me: str) -> tuple[list[Change], str]:
    """Cluster states that other writers committed since ``mark``, and the next mark.

    The mark is the oldest transaction still running when we looked (``pg_snapshot_xmin``): every
    transaction that commits later has an id at least that, so nothing is missed however commits
    interleave; rows seen before may come again (applying them twice changes nothing).
    """
    row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").fetchone()
    assert row is not None
    following = str(row[0])
    if mark is None:
        return [], following
    with conn.cursor(binary=True) as cursor:
        rows = cursor.execute(
            "SELECT name, sequence, reported_at, last_seen, summary FROM clusters"
            " WHERE tx >= %s::text::xid8 AND writer <> %s",
            (mark, me),
        ).fetchall()
    return [Change(n, int(s), float(r), float(seen), bytes(j)) for n, s, r, seen, j in rows], following
