"""Accepted reports in PostgreSQL: group commits that several hub replicas may run at once.

A batch is one transaction of three round trips whatever its size (psycopg's pipeline mode, the
rows sent as arrays): (1) lock every cluster row of the batch in name order with one statement,
creating the rows of new clusters (so two replicas, or a replica and the history sweep, never
deadlock, and a cluster two replicas create at once is decided like any other), read the locked
rows' sequences and insert the reports, a (cluster, sequence) already stored being a duplicate;
(2) move each cluster's current state forward and cut back the history of the clusters due;
(3) commit. The database, not a replica's memory, decides what is current or late, since another
replica may have stored a newer report a moment ago.

What other replicas committed is read back by :func:`changes_since` (see ``hub.pg_schema``). A row
whose state is another replica's (this batch only bumped its ``last_seen``) is marked with no
writer, so that every replica, the one holding the newer state too, reads it again.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
import structlog

from hub.contract import ContractError, StatusReport, parse_report
from hub.database import Change
from hub.model import ClusterSummary, HistoryEntry, summary_from_json
from hub.reportstore import Outcome, Pending, Retention, pack, unpack

log = structlog.get_logger("hub.store")

Conn = psycopg.Connection[tuple[Any, ...]]

LOAD_ROWS = 2000  # cluster rows fetched per round trip at start-up

# The batch statements send their arrays in binary (%b): compressed bodies go as they are, not as
# hex text, which halves the writer's CPU per report.

# Locks the rows in the order given (the conflict action locks a row even where its WHERE is
# false); a new cluster gets an empty placeholder row, which step (2) fills before anyone sees it.
_LOCK = (
    "INSERT INTO clusters AS c (name, sequence, reported_at, last_seen, summary, writer)"
    " SELECT n, 0, 0, 0, '', %b FROM unnest(%b::text[]) AS n"
    " ON CONFLICT (name) DO UPDATE SET sequence = c.sequence WHERE false"
)
_LOCKED = "SELECT name, sequence FROM clusters WHERE name = ANY(%b::text[]) AND summary <> ''"
_INSERT_REPORTS = (
    "INSERT INTO reports (cluster, sequence, received_at, body, health, commit_id)"
    " SELECT * FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::bytea[], %b::text[], %b::text[])"
    " ON CONFLICT DO NOTHING RETURNING cluster, sequence"
)
_CURRENT = (
    "UPDATE clusters SET sequence = v.s, reported_at = v.r, last_seen = greatest(last_seen, v.l),"
    " summary = v.j, tx = pg_current_xact_id(), writer = %b"
    " FROM unnest(%b::text[], %b::bigint[], %b::float8[], %b::float8[], %b::bytea[]) AS v(n, s, r, l, j)"
    " WHERE name = v.n"
)
_TOUCH = (
    "UPDATE clusters SET last_seen = v.l, tx = pg_current_xact_id(), writer = ''"
    " FROM unnest(%b::text[], %b::float8[]) AS v(n, l) WHERE name = v.n AND last_seen < v.l"
)
_UNUSED = "DELETE FROM clusters WHERE name = ANY(%b::text[]) AND summary = ''"


def write_batch(
    conn: Conn,
    batch: Sequence[Pending],
    prune: Iterable[str],
    retention: Retention,
    writer: str,
    encode: Callable[[bytes], bytes] = pack,
) -> list[Outcome]:
    """Store a batch in one transaction and say what happened to each report (as ``hub.reportstore``);
    ``encode`` makes a body into what is stored (the server may compress it: ``hub.pg_schema``)."""
    names = sorted({item.report.cluster for item in batch})
    rows = sorted(
        {(i.report.cluster, i.report.sequence): i for i in reversed(batch)}.values(),
        key=lambda i: (i.report.cluster, i.report.sequence),
    )
    columns = (
        [i.report.cluster for i in rows],
        [i.report.sequence for i in rows],
        [i.received_at for i in rows],
        [encode(i.body) for i in rows],
        [i.summary.health for i in rows],
        [i.summary.commit for i in rows],
    )
    with conn.pipeline(), conn.transaction():
        conn.execute(_LOCK, (writer, names))
        locked = conn.execute(_LOCKED, (names,))
        added = conn.execute(_INSERT_REPORTS, columns)
        stored: dict[str, int] = dict(locked.fetchall())
        inserted = set(added.fetchall())
        outcomes: list[Outcome] = []
        newest: dict[str, Pending] = {}
        seen: dict[str, float] = {}
        for item in batch:
            key = (item.report.cluster, item.report.sequence)
            name = item.report.cluster
            seen[name] = max(seen.get(name, 0.0), item.received_at)  # a duplicate is a sign of life too
            if key not in inserted:
                outcomes.append(Outcome("duplicate", None))
                continue
            inserted.discard(key)  # the same report twice in one batch: the second is a duplicate
            top = newest[name].report.sequence if name in newest else stored.get(name)
            if top is not None and item.report.sequence < top:
                outcomes.append(Outcome("late", None))
                continue
            newest[name] = item
            outcomes.append(Outcome("current", item.summary))
        _store_current(conn, names, stored, newest, seen, writer)
        if prune:
            _prune(conn, sorted(prune), retention, max(i.received_at for i in batch) - retention.days * 86400)
    return outcomes


def _store_current(
    conn: Conn,
    names: list[str],
    stored: dict[str, int],
    newest: dict[str, Pending],
    seen: dict[str, float],
    writer: str,
) -> None:
    current = [newest[n] for n in names if n in newest]
    if current:
        conn.execute(
            _CURRENT,
            (
                writer,
                [i.report.cluster for i in current],
                [i.report.sequence for i in current],
                [i.received_at for i in current],
                [seen[i.report.cluster] for i in current],
                [i.summary_json for i in current],
            ),
        )
    late = [n for n in names if n in seen and n not in newest]
    if late:
        conn.execute(_TOUCH, (late, [seen[n] for n in late]))
    unused = [n for n in names if n not in stored and n not in newest]  # no new report of a new cluster
    if unused:
        conn.execute(_UNUSED, (unused,))


# The history of each named cluster, found by walking its primary key backwards from the newest:
# ``cut`` is the sequence of its newest report past the first %s (NULL when it has no more).
_CUT = (
    "(SELECT n, (SELECT sequence FROM reports WHERE cluster = n ORDER BY sequence DESC OFFSET %s LIMIT 1)"
    " AS cut FROM unnest(%s::text[]) AS n) AS k"
)
_PRUNE_COUNT = f"DELETE FROM reports r USING {_CUT} WHERE r.cluster = k.n AND r.sequence <= k.cut"  # noqa: S608
_PRUNE_AGE = (
    "DELETE FROM reports r USING clusters c WHERE r.cluster = ANY(%s) AND c.name = r.cluster"
    " AND r.received_at < %s AND r.sequence < c.sequence"
)
_PRUNE_BODIES = (
    f"UPDATE reports r SET body = ''::bytea FROM {_CUT}"  # noqa: S608
    " WHERE r.cluster = k.n AND r.sequence <= k.cut AND length(r.body) > 0"
)


def _prune(conn: Conn, names: list[str], retention: Retention, cutoff: float) -> list[psycopg.Cursor[Any]]:
    """Send the statements that cut ``names``' history back to the retention (never the current
    report: it is the newest); their cursors (deleted rows: the first two)."""
    return [
        conn.execute(_PRUNE_COUNT, (retention.reports, names)),
        conn.execute(_PRUNE_AGE, (names, cutoff)),
        conn.execute(_PRUNE_BODIES, (retention.bodies, names)),
    ]


def prune_history(conn: Conn, clusters: Iterable[str], retention: Retention, cutoff: float) -> int:
    """Cut the history of ``clusters`` back to the retention (never the current report); rows deleted."""
    names = sorted(clusters)
    if not names:
        return 0
    # the clusters' rows first, in name order as a batch locks them: the sweep and a batch of
    # another replica never wait for each other's history rows in opposite orders
    conn.execute("SELECT 1 FROM clusters WHERE name = ANY(%s) ORDER BY name FOR UPDATE", (names,))
    by_count, by_age, _ = _prune(conn, names, retention, cutoff)
    return by_count.rowcount + by_age.rowcount


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
    # A server-side cursor, read LOAD_ROWS at a time: a client-side one holds the whole result in
    # libpq's memory at once (200 MB at 100k clusters), which the process keeps after it is freed.
    with conn.transaction(), conn.cursor("load_summaries", binary=True) as cursor:
        cursor.itersize = LOAD_ROWS
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
