"""The PostgreSQL write path alone: group commits of the hub's store, without HTTP or validation.

Run: .venv/bin/python tests/benchmarks/bench_pg_writes.py [--clusters 10000] [--group 32] [--writers 2]

Seeds a real PostgreSQL (fsync on) like bench_hub_pg, then ``--writers`` threads, each with its own
connection as a hub replica's writer has, commit ``--reports`` reports in groups of ``--group``
through ``PgStore.write_batch`` (each writer on its own share of the clusters, then all on the same
clusters to show lock waits). Prints reports/s and CPU per report of this process (the hub's share
of the store work: packing, the driver) and of PostgreSQL, so a change to ``hub.pg_reports`` can be
measured before and after in the same conditions.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub.contract import parse_report
from hub.database import Database
from hub.model import summarize, summary_to_json
from hub.pg_backend import PgStore
from hub.reportstore import Pending, Retention
from hub.writer import PRUNE_EVERY
from tests.benchmarks.bench_hub import NAME, body_for, templates
from tests.benchmarks.bench_hub_pg import postgres_cpu, seed
from tests.pgserver import PostgresServer


def pendings(shapes: list[bytes], names: list[str], sequence: int, count: int, step: int) -> list[Pending]:
    parsed = [parse_report(s) for s in shapes]
    out = []
    now = time.time()
    for i in range(count):
        index = (i * step) % len(names)
        name = names[index]
        report = replace(parsed[index % len(parsed)], cluster=name, sequence=sequence + i // len(names))
        summary = summarize(report, now)
        body = body_for(shapes[index % len(shapes)], name, report.sequence)
        out.append(Pending(report, body, now, summary, summary_to_json(summary)))
    return out


def drive(url: str, work: list[Pending], group: int, replica: str, took: list[float]) -> None:
    store = PgStore.open(url, create=False, replica=replica)
    since: dict[str, int] = {}
    started = time.thread_time()
    for start in range(0, len(work), group):
        batch = work[start : start + group]
        prune = set()
        for item in batch:
            since[item.report.cluster] = since.get(item.report.cluster, 0) + 1
            if since[item.report.cluster] % PRUNE_EVERY == 0:
                prune.add(item.report.cluster)
        store.write_batch(batch, {}, prune, Retention())
    took.append(time.thread_time() - started)
    store.close()


def measure(server: PostgresServer, url: str, parts: list[list[Pending]], group: int, label: str) -> None:
    took: list[float] = []
    threads = [
        threading.Thread(target=drive, args=(url, part, group, f"w{k}", took)) for k, part in enumerate(parts)
    ]
    pg_before = postgres_cpu(server)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    pg = postgres_cpu(server) - pg_before
    count = sum(len(p) for p in parts)
    print(
        f"{label}: {count} reports in {seconds:.1f}s = {count / seconds:.0f}/s, groups of {group};"
        f" CPU per report: writer threads {sum(took) / count * 1000:.3f} ms,"
        f" PostgreSQL {pg / count * 1000:.3f} ms; load {os.getloadavg()[0]:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=10000)
    parser.add_argument("--history", type=int, default=Retention().reports)
    parser.add_argument("--reports", type=int, default=20000, help="per measurement")
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(7)
    server = PostgresServer(
        fsync=True, root=Path(os.environ["BENCH_DIR"]) if "BENCH_DIR" in os.environ else None
    )
    server.start()
    try:
        url = server.new_database()
        Database(url=url).connect().close()  # migrate
        names = [NAME.format(i + 1) for i in range(args.clusters)]
        shapes = templates(10, rng)
        seed(url, names, shapes, args.history, Retention().bodies)
        sequence = args.history + 1
        work = pendings(shapes, names, sequence, args.reports, 1)
        sequence += args.reports // len(names) + 1
        split = [work[k :: args.writers] for k in range(args.writers)]  # each writer its own clusters
        measure(server, url, split, args.group, f"{args.writers} writers, own clusters")
        # every writer on the same clusters at once: each report is sent by all of them, so one
        # writer stores it and the others find a duplicate (or the cluster locked meanwhile)
        work = pendings(shapes, names, sequence, args.reports // args.writers, 1)
        measure(server, url, [work] * args.writers, args.group, f"{args.writers} writers, same clusters")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
