"""Hub benchmark on PostgreSQL: 1 and 2 hub replicas on one real PostgreSQL server, load spread
across the replicas (each cluster reports to one of them, as a load balancer would spread agents).

Run: .venv/bin/python tests/benchmarks/bench_hub.py --store postgresql [--clusters 10000]
(or this file directly, with the same options).

Starts a PostgreSQL server of its own (Debian's package, fsync on, in $BENCH_DIR or /tmp), seeds
the fleet with history at retention depth, and for 1 and then 2 replicas prints: start-up time,
sustained ingest (goal >= 3,000 reports/s with 2 replicas), ingest p50/p99 at 300 reports/s alone
and with readers, CPU per report of the hub processes and of PostgreSQL, the staleness seen across
replicas, RSS per replica and storage (database + WAL) per 10k clusters.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub.contract import parse_report
from hub.database import Database
from hub.model import summarize, summary_to_json
from hub.reportstore import Retention, pack
from tests.benchmarks import hubload
from tests.benchmarks.bench_hub import NAME, body_for, cpu_seconds, rss_mib, start_timed, templates, time_get
from tests.integration.hub.hubserver import SubprocessHub, create_tokens, create_viewer
from tests.pgserver import PostgresServer

REPORT_COLUMNS = "cluster, sequence, received_at, body, health, commit_id"
CLUSTER_COLUMNS = "name, sequence, reported_at, last_seen, summary"


def seed(url: str, names: list[str], shapes: list[bytes], depth: int, bodies: int) -> float:
    """Every cluster's history as the hub stores it, written with COPY."""
    now = time.time()
    started = time.perf_counter()
    parsed = [parse_report(t) for t in shapes]
    summaries = []
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy(
            "COPY reports (cluster, sequence, received_at, body, health, commit_id) FROM STDIN"
        ) as copy:
            for index, name in enumerate(names):
                shape = index % len(shapes)
                summary = summarize(replace(parsed[shape], cluster=name, sequence=depth), now)
                summaries.append((name, depth, now, now, summary_to_json(summary)))
                packed = pack(body_for(shapes[shape], name, depth))
                for sequence in range(1, depth + 1):
                    body = packed if sequence > depth - bodies else b""
                    at = now - (depth - sequence) * 30
                    copy.write_row((name, sequence, at, body, summary.health, summary.commit))
        with cursor.copy(
            "COPY clusters (name, sequence, reported_at, last_seen, summary) FROM STDIN"
        ) as copy:
            for row in summaries:
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its children: the live ones, and those it waited for."""
    fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == root:
                total += cpu_seconds(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def postgres_cpu(server: PostgresServer) -> float:
    """CPU seconds of the postmaster and every backend it forked."""
    assert server.process is not None
    return tree_cpu(server.process.pid)


def hubs_cpu(hubs: list[SubprocessHub]) -> float:
    """CPU seconds of the hub processes and their reader processes."""
    return sum(tree_cpu(h.process.pid) for h in hubs if h.process)


def main_cpu(hubs: list[SubprocessHub]) -> float:
    """CPU seconds of the hub processes alone (HTTP, ingest, the writer, following the other replicas)."""
    return sum(cpu_seconds(h.process.pid) for h in hubs if h.process)


def postgres_cpu_by_kind(server: PostgresServer, url: str) -> dict[str, float]:
    """CPU seconds so far of the server's live processes by what they do (the hub's connections by
    application name, autovacuum, checkpointer, WAL writer...); ``exited`` is what finished ones used."""
    assert server.process is not None
    with psycopg.connect(url, autocommit=True) as conn:
        kinds = {
            int(pid): str(app or kind)
            for pid, kind, app in conn.execute(
                "SELECT pid, backend_type, application_name FROM pg_stat_activity"
            )
        }
    fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    out = {
        "exited": (int(fields[13]) + int(fields[14])) / tick,
        "postmaster": cpu_seconds(server.process.pid),
    }
    for pid, kind in kinds.items():
        try:
            out[kind] = out.get(kind, 0.0) + cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def cpu_split(before: dict[str, float], after: dict[str, float], reports: int) -> str:
    spent = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return ", ".join(
        f"{k} {v / reports * 1000:.3f}" for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v > 0
    )


def top_statements(url: str, reports: int, count: int = 8) -> list[str]:
    """The statements that took the most server time (pg_stat_statements), per report; then reset."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT total_exec_time, calls, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %s",
            (count,),
        ).fetchall()
        conn.execute("SELECT pg_stat_statements_reset()")
    return [f"{ms / reports * 1000:8.1f} us/report {calls:7d} calls  {query}" for ms, calls, query in rows]


def storage_mib(server: PostgresServer, url: str) -> tuple[float, float]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert row is not None
    wal = sum(p.stat().st_size for p in (server.data / "pg_wal").iterdir() if p.is_file())
    return int(row[0]) / 2**20, wal / 2**20


Jobs = list[list[tuple[str, bytes]]]


def split(jobs: list[tuple[int, str, bytes]], replicas: int) -> Jobs:
    """Each cluster (by index) to one replica."""
    parts: Jobs = [[] for _ in range(replicas)]
    for index, token, body in jobs:
        parts[index % replicas].append((token, body))
    return parts


async def flood_all(ports: list[int], parts: Jobs, concurrency: int) -> tuple[float, int]:
    results = await asyncio.gather(
        *(
            hubload.flood(port, part, max(1, concurrency // len(ports)))
            for port, part in zip(ports, parts, strict=True)
        )
    )
    return max(r[0] for r in results), sum(r[1] for r in results)


async def paced_all(
    ports: list[int],
    parts: Jobs,
    rate: float,
    readers: int,
    viewer: str,
    paths: list[str],
) -> tuple[list[float], list[float]]:
    stop = asyncio.Event()
    reading = [
        asyncio.create_task(hubload.readers(port, viewer, paths, readers // len(ports), stop))
        for port in ports
        if readers
    ]
    results = await asyncio.gather(
        *(hubload.paced(port, part, rate / len(ports), 32) for port, part in zip(ports, parts, strict=True))
    )
    stop.set()
    reads = [t for task in reading for t in await task]
    return [t for r in results for t in r], reads


def staleness(a: SubprocessHub, b: SubprocessHub, token: str, name: str, sequence: int, viewer: str) -> float:
    """Seconds from a report acknowledged by A until B serves it."""
    body = body_for(templates(1, random.Random(1))[0], name, sequence)
    posted = httpx.post(a.url + "/api/v1/reports", content=body, headers={"Authorization": f"Bearer {token}"})
    posted.raise_for_status()
    started = time.perf_counter()
    while True:
        seen = httpx.get(b.url + f"/api/v1/clusters/{name}", headers={"Authorization": f"Bearer {viewer}"})
        if seen.status_code == 200 and seen.json()["sequence"] >= sequence:
            return time.perf_counter() - started
        time.sleep(0.01)


def run(args: argparse.Namespace) -> int:
    rng = random.Random(7)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}; store: PostgreSQL (fsync on); the load generator runs here too"
    )
    statements = bool(os.environ.get("BENCH_PG_STATEMENTS"))  # where the server's time goes, per statement
    server = PostgresServer(
        fsync=True,
        root=Path(os.environ["BENCH_DIR"]) if "BENCH_DIR" in os.environ else None,
        settings={"shared_preload_libraries": "pg_stat_statements"} if statements else None,
    )
    server.start()
    try:
        url = server.new_database()
        database = Database(url=url)
        database.connect().close()  # migrate
        if statements:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pg_stat_statements")
        n = args.clusters
        names = [NAME.format(i + 1) for i in range(n)]
        started = time.perf_counter()
        tokens = create_tokens(database, "cluster", names)
        print(f"tokens: {n} created in {time.perf_counter() - started:.2f}s")
        viewer = create_viewer(database)
        shapes = templates(args.bundles, rng)
        seconds = seed(url, names, shapes, args.history, Retention().bodies)
        db, wal = storage_mib(server, url)
        print(f"seeded {n} clusters x {args.history} stored reports in {seconds:.0f}s: database {db:.0f} MiB")
        sequence = args.history + 1
        for replicas in (1, 2):
            tag = f"[{replicas} replica(s)]"
            hubs = [
                SubprocessHub(database, log_dir=server.root / f"hub-{replicas}-{i}") for i in range(replicas)
            ]
            for hub in hubs:
                port_open, healthy, served, cpu = start_timed(hub, viewer, n)
                print(
                    f"{tag} start-up: port {port_open:.1f}s, serving {healthy:.1f}s,"
                    f" whole fleet {served:.1f}s, {cpu:.1f} CPU-s"
                )
            ports = [hub.port for hub in hubs]
            try:
                jobs = [
                    (
                        i % n,
                        tokens[names[i % n]],
                        body_for(shapes[(i % n) % len(shapes)], names[i % n], sequence + i // n),
                    )
                    for i in range(args.flood)
                ]
                sequence += args.flood // n + 1
                hub_cpu, ingest_cpu = hubs_cpu(hubs), main_cpu(hubs)
                pg_cpu = postgres_cpu(server)
                own_cpu = sum(os.times()[:2])
                kinds = postgres_cpu_by_kind(server, url)
                if statements:
                    top_statements(url, 1)
                seconds, accepted = asyncio.run(flood_all(ports, split(jobs, replicas), args.concurrency))
                hub_cpu, ingest_cpu = hubs_cpu(hubs) - hub_cpu, main_cpu(hubs) - ingest_cpu
                pg_cpu = postgres_cpu(server) - pg_cpu
                own_cpu = sum(os.times()[:2]) - own_cpu
                del jobs
                print(
                    f"{tag} throughput: {accepted} reports in {seconds:.1f}s = "
                    f"{accepted / seconds:.0f} reports/s ({args.concurrency} connections; goal: 3000 with 2);"
                    f" CPU per report: hubs {hub_cpu / accepted * 1000:.2f} ms"
                    f" (of which reader processes {(hub_cpu - ingest_cpu) / accepted * 1000:.2f}),"
                    f" PostgreSQL {pg_cpu / accepted * 1000:.2f} ms,"
                    f" load generator {own_cpu / accepted * 1000:.2f} ms; "
                    f"load {os.getloadavg()[0]:.1f}"
                )
                print(
                    f"{tag} PostgreSQL CPU per report by process (ms):"
                    f" {cpu_split(kinds, postgres_cpu_by_kind(server, url), accepted)}"
                )
                if statements:
                    for line in top_statements(url, accepted):
                        print(f"{tag}   {line}")
                count = int(args.rate * args.paced_seconds)
                paths = [
                    "/",
                    "/api/v1/clusters",
                    "/api/v1/bundles",
                    f"/api/v1/clusters/{names[1]}",
                    "/api/v1/summary",
                ]
                for readers in (0, args.readers):
                    picked = [rng.randrange(n) for _ in range(count)]
                    sequence += 1
                    paced = [
                        (i, tokens[names[i]], body_for(shapes[i % len(shapes)], names[i], sequence + k))
                        for k, i in enumerate(picked)
                    ]
                    sequence += count
                    latencies, reads = asyncio.run(
                        paced_all(ports, split(paced, replicas), args.rate, readers, viewer, paths)
                    )
                    print(
                        f"{tag} ingest at {args.rate:.0f}/s with {readers} readers: "
                        f"p50 {hubload.percentile(latencies, 0.5) * 1000:.1f} ms, "
                        f"p99 {hubload.percentile(latencies, 0.99) * 1000:.1f} ms (goal <= 50 ms)"
                        + (f"; {len(reads) / args.paced_seconds:.0f} reads/s" if reads else "")
                    )
                if replicas == 2:
                    sequence += 1
                    seen = [
                        staleness(hubs[0], hubs[1], tokens[names[k]], names[k], sequence, viewer)
                        for k in range(5)
                    ]
                    print(
                        f"{tag} accepted on A, served by B after: max {max(seen):.2f}s,"
                        f" mean {sum(seen) / len(seen):.2f}s"
                    )
                for path in ("/", "/api/v1/clusters", f"/clusters/{names[0]}"):
                    first, again, _ = time_get(hubs[-1].url, viewer, path)
                    print(f"{tag} GET {path}: {first * 1000:.1f} ms computed, {again * 1000:.1f} ms again")
                for hub in hubs:
                    assert hub.process is not None
                    rss, peak = rss_mib(hub.process.pid)
                    print(f"{tag} hub RSS: {rss:.0f} MiB now, {peak:.0f} MiB peak")
                db, wal = storage_mib(server, url)
                print(
                    f"{tag} storage: database {db:.0f} MiB + WAL {wal:.0f} MiB = "
                    f"{(db + wal) / n * 10000:.0f} MiB per 10k clusters"
                )
            finally:
                for hub in hubs:
                    hub.stop()
    finally:
        server.stop()
    return 0


def main() -> int:
    from tests.benchmarks.bench_hub import arguments

    return run(arguments().parse_args())


if __name__ == "__main__":
    sys.exit(main())
