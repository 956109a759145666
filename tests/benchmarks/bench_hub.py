"""Hub benchmark: a fleet with history at production depth, agents reporting while people read.

Run: .venv/bin/python tests/benchmarks/bench_hub.py [--clusters 10000] [--history 50]

Seeds N clusters with ``--history`` stored reports each (default retention depth, written with the
hub's own encoding: compact summaries, compressed bodies for the newest, history entries for the
rest), then against a real `flotilla-hub serve` subprocess (SQLite on local disk) prints: start-up
time with that history (port open, first 200 on /healthz and on /), sustained ingest (target >=
2,000 reports/s at 10k clusters), ingest p50/p99 at 300 reports/s alone and with 20 readers looping
on the page and the API side by side (target p99 <= 50 ms, and <= 1.5x that with readers), server
time of `/` and of API pages (target <= 250 ms), RSS (target <= 300 MiB), storage per 10k clusters
and the restart time (target <= 10 s). Reports are about 6.6 KB (10 bundles with resource lists).
Page times: the first request (computed; target <= 250 ms) and the median of repeats (which a quiet
hub answers from its read cache). ``--store postgresql`` runs the PostgreSQL benchmark instead, with
1 and 2 replicas (tests/benchmarks/bench_hub_pg.py).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import replace
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub import store
from hub.contract import parse_report
from hub.model import summarize, summary_to_json
from hub.reportstore import Retention, pack
from tests.benchmarks import hubload
from tests.integration.hub.hubserver import SubprocessHub, create_viewer, reader_pid

TEMPLATES = 500  # distinct report shapes; each cluster uses one with its own name and sequence
NAME = "edge-{:06d}"


def templates(bundles: int, rng: random.Random) -> list[bytes]:
    return [hubload.report_body(NAME.format(0), 0, bundles, rng) for _ in range(TEMPLATES)]


def body_for(template: bytes, cluster: str, sequence: int) -> bytes:
    out = template.replace(f'"cluster":"{NAME.format(0)}"'.encode(), f'"cluster":"{cluster}"'.encode(), 1)
    return out.replace(b'"sequence":0,', f'"sequence":{sequence},'.encode(), 1)


def seed(data_dir: Path, names: list[str], shapes: list[bytes], depth: int, bodies: int) -> float:
    """Write every cluster's history as the hub stores it: ``depth`` entries, the newest with bodies."""
    conn = store.connect(data_dir)
    now = time.time()
    started = time.perf_counter()
    parsed = [parse_report(t) for t in shapes]
    for start in range(0, len(names), 2000):
        rows, clusters = [], []
        for index in range(start, min(start + 2000, len(names))):
            name = names[index]
            shape = index % len(shapes)
            report = replace(parsed[shape], cluster=name, sequence=depth)
            packed = pack(body_for(shapes[shape], name, depth))
            summary = summarize(report, now)
            for sequence in range(1, depth + 1):
                body = packed if sequence > depth - bodies else b""
                rows.append(
                    (name, sequence, now - (depth - sequence) * 30, body, summary.health, summary.commit)
                )
            clusters.append((name, depth, now, now, summary_to_json(summary)))
        with store.transaction(conn):
            conn.executemany(
                "INSERT INTO reports (cluster, sequence, received_at, body, health, commit_id)"
                " VALUES (?,?,?,?,?,?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO clusters (name, sequence, reported_at, last_seen, summary) VALUES (?,?,?,?,?)",
                clusters,
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def children(pid: int) -> list[int]:
    """The hub's reader processes (its child processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def storage_mib(data_dir: Path) -> tuple[float, float]:
    db = (data_dir / store.DB_NAME).stat().st_size / 2**20
    return db, store.wal_bytes(data_dir) / 2**20


def _first(hub: SubprocessHub, path: str, viewer: str, wanted: int | None, deadline: float) -> float:
    """Poll ``path`` until it answers (any status, or ``wanted``); the time of that answer."""
    headers = {"Authorization": f"Bearer {viewer}"}
    url = hub.url + path
    while time.perf_counter() < deadline:
        if hub.process is not None and hub.process.poll() is not None:
            raise RuntimeError(f"the hub exited: {hub.log_path.read_text()[-2000:]}")
        try:
            status = httpx.get(url, headers=headers, timeout=5).status_code
            if wanted is None or status == wanted:
                return time.perf_counter()
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer {wanted or 'at all'} in time")


def start_timed(hub: SubprocessHub, viewer: str, clusters: int) -> tuple[float, float, float, float]:
    """(seconds until the port answers, until /healthz is 200, until `/` is 200, hub CPU seconds then).

    While the fleet loads the hub answers 503 with Retry-After (port open); 200 once it is loaded."""
    started = time.perf_counter()
    hub.start(timeout=600, ready=False)
    deadline = started + 600
    port_open = _first(hub, "/healthz", viewer, None, deadline) - started
    healthy = _first(hub, "/healthz", viewer, 200, deadline) - started
    page = _first(hub, "/", viewer, 200, deadline) - started
    summary = httpx.get(
        hub.url + "/api/v1/summary", headers={"Authorization": f"Bearer {viewer}"}, timeout=60
    )
    assert summary.json()["clusters"] == clusters, summary.text[:300]
    assert hub.process is not None
    return port_open, healthy, page, cpu_seconds(hub.process.pid)


def time_get(url: str, viewer: str, path: str, runs: int = 7) -> tuple[float, float, int]:
    """(first request: computed, median of the rest: mostly answered from the read cache, size)."""
    timings = []
    size = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}, timeout=60) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            size = len(response.content)
    first, rest = timings[0], sorted(timings[1:])
    return first, rest[len(rest) // 2], size


def _reading(
    port: int,
    viewer: str,
    paths: list[str],
    count: int,
    stop: EventType,
    results: Queue[tuple[list[float], float]],
) -> None:
    """The readers, in a process of their own (as browsers would be): their client work must not
    delay the ingest load generator's sends and timings."""

    async def run() -> tuple[list[float], float]:
        stopping = asyncio.Event()

        async def watch() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            stopping.set()

        started = time.perf_counter()
        watcher = asyncio.create_task(watch())
        timings = await hubload.readers(port, viewer, paths, count, stopping)
        await watcher
        return timings, time.perf_counter() - started

    results.put(asyncio.run(run()))


def paced_with_readers(
    port: int, jobs: list[tuple[str, bytes]], rate: float, viewer: str, paths: list[str], count: int
) -> tuple[list[float], list[float], float]:
    """Paced ingest while ``count`` readers loop in another process; (latencies, reads, read seconds)."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    results: Queue[tuple[list[float], float]] = context.Queue()
    reading = context.Process(target=_reading, args=(port, viewer, paths, count, stop, results))
    reading.start()
    time.sleep(1.0)  # the readers are looping before the first report is sent
    latencies = asyncio.run(hubload.paced(port, jobs, rate, 64))
    stop.set()
    reads, seconds = results.get(timeout=120)
    reading.join(timeout=30)
    return latencies, reads, seconds


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--clusters", type=int, default=10000)
    parser.add_argument("--bundles", type=int, default=10)
    parser.add_argument("--history", type=int, default=Retention().reports, help="stored reports per cluster")
    parser.add_argument("--flood", type=int, default=20000, help="reports sent as fast as the hub takes them")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument(
        "--read-processes", type=int, default=None, help="the hub's --read-processes (default: the hub's own)"
    )
    return parser


def main() -> int:
    args = arguments().parse_args()
    if args.store == "postgresql":
        from tests.benchmarks import bench_hub_pg

        return bench_hub_pg.run(args)
    rng = random.Random(7)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}; store: SQLite"
    )
    n = args.clusters
    with tempfile.TemporaryDirectory(prefix="bench-hub-", dir=os.environ.get("BENCH_DIR")) as tmp:
        data_dir = Path(tmp)
        names = [NAME.format(i + 1) for i in range(n)]
        started = time.perf_counter()
        conn = store.connect(data_dir)
        tokens = store.create_tokens(conn, "cluster", names)
        conn.close()
        print(
            f"tokens: {n} created in {time.perf_counter() - started:.2f}s"
            " (one transaction, as --from-file does)"
        )
        viewer = create_viewer(data_dir)
        shapes = templates(args.bundles, rng)
        print(
            f"report size: {sum(map(len, shapes)) // len(shapes)} bytes on average; "
            f"compressed {sum(len(pack(s)) for s in shapes) // len(shapes)} bytes"
        )
        seconds = seed(data_dir, names, shapes, args.history, Retention().bodies)
        db, wal = storage_mib(data_dir)
        print(f"seeded {n} clusters x {args.history} stored reports in {seconds:.0f}s: {db:.0f} MiB")
        extra = () if args.read_processes is None else ("--read-processes", str(args.read_processes))
        hub = SubprocessHub(data_dir, extra_args=extra)
        port_open, healthy, page, cpu = start_timed(hub, viewer, n)
        print(
            f"start-up with that history: port answering (503 while loading) {port_open:.1f}s,"
            f" first 200 on /healthz {healthy:.1f}s, on / {page:.1f}s, {cpu:.1f} CPU-seconds (target <= 10 s)"
        )
        assert hub.process is not None
        if args.read_processes != 0:
            reader_pid(hub)  # measure once the reader process has loaded the fleet too
        sequence = args.history + 1
        try:
            jobs = []
            for i in range(args.flood):
                index = i % n
                jobs.append(
                    (
                        tokens[names[index]],
                        body_for(shapes[index % len(shapes)], names[index], sequence + i // n),
                    )
                )
            sequence += args.flood // n + 1
            readers = children(hub.process.pid)
            cpu_before = cpu_seconds(hub.process.pid)
            reader_before = sum(cpu_seconds(pid) for pid in readers)
            seconds, accepted = asyncio.run(hubload.flood(hub.port, jobs, args.concurrency))
            cpu_used = cpu_seconds(hub.process.pid) - cpu_before
            reader_used = sum(cpu_seconds(pid) for pid in readers) - reader_before
            print(
                f"throughput: {accepted} reports in {seconds:.1f}s = {accepted / seconds:.0f} reports/s "
                f"({args.concurrency} connections; target >= 2000); "
                f"hub CPU {cpu_used / accepted * 1000:.2f} ms "
                f"per report (+ {reader_used / accepted * 1000:.2f} ms in {len(readers)} reader processes "
                f"following); load {os.getloadavg()[0]:.1f}"
            )
            del jobs
            count = int(args.rate * args.paced_seconds)
            page_paths = [
                "/",
                "/?page=3",
                "/?selector=region%3Deu",
                "/bundles/bundle-3",
                f"/clusters/{names[0]}",
            ]
            api_paths = [
                "/api/v1/clusters",
                "/api/v1/bundles",
                "/api/v1/summary",
                f"/api/v1/clusters/{names[1]}",
                "/api/v1/bundles/bundle-3",
                "/api/v1/clusters?selector=tier%3Dedge&offset=400",
            ]

            def paced_jobs() -> list[tuple[str, bytes]]:
                nonlocal sequence
                picked = [rng.randrange(n) for _ in range(count)]
                sequence += 1
                return [
                    (tokens[names[i]], body_for(shapes[i % len(shapes)], names[i], sequence + k))
                    for k, i in enumerate(picked)
                ]

            cpu_before = cpu_seconds(hub.process.pid)
            alone = asyncio.run(hubload.paced(hub.port, paced_jobs(), args.rate, 64))
            alone_cpu = (cpu_seconds(hub.process.pid) - cpu_before) / args.paced_seconds
            sequence += count
            cpu_before = cpu_seconds(hub.process.pid)
            half = args.readers // 2
            with_readers, reads, read_seconds = paced_with_readers(
                hub.port, paced_jobs(), args.rate, viewer, page_paths + api_paths, args.readers
            )
            read_cpu = (cpu_seconds(hub.process.pid) - cpu_before) / args.paced_seconds
            sequence += count
            print(
                f"main process CPU: {alone_cpu * 100:.0f}% of a core at {args.rate:.0f}/s alone, "
                f"{read_cpu * 100:.0f}% with readers; load {os.getloadavg()[0]:.1f}"
            )
            p99_alone, p99_read = (
                hubload.percentile(alone, 0.99) * 1000,
                hubload.percentile(with_readers, 0.99) * 1000,
            )
            print(
                f"ingest at {args.rate:.0f}/s alone: p50 {hubload.percentile(alone, 0.5) * 1000:.1f} ms, "
                f"p99 {p99_alone:.1f} ms (target <= 50 ms)"
            )
            p50_read = hubload.percentile(with_readers, 0.5) * 1000
            print(
                f"ingest at {args.rate:.0f}/s with {args.readers} readers ({half} on pages, "
                f"{args.readers - half} on the API, looping): p50 {p50_read:.1f} ms,"
                f" p99 {p99_read:.1f} ms = {p99_read / p99_alone:.2f}x alone (target <= 1.5x)"
            )
            print(
                f"  readers (another process) did {len(reads) / read_seconds:.0f} reads/s, "
                f"p50 {hubload.percentile(reads, 0.5) * 1000:.0f} ms, "
                f"p99 {hubload.percentile(reads, 0.99) * 1000:.0f} ms"
            )
            for path in page_paths + api_paths + ["/?page=40", "/metrics"]:
                first, again, size = time_get(hub.url, viewer, path)
                print(
                    f"GET {path}: {first * 1000:.1f} ms computed, {again * 1000:.1f} ms again, {size} bytes"
                )
            rss, peak = rss_mib(hub.process.pid)
            print(f"hub RSS: {rss:.0f} MiB now, {peak:.0f} MiB peak (target <= 300 MiB per process)")
            for child in children(hub.process.pid):
                rss, peak = rss_mib(child)
                print(f"  reader process {child}: RSS {rss:.0f} MiB now, {peak:.0f} MiB peak")
            db, wal = storage_mib(data_dir)
            print(
                f"storage: database {db:.0f} MiB + WAL {wal:.0f} MiB = "
                f"{(db + wal) / n * 10000:.0f} MiB per 10k clusters (target <= 2 GiB at 100k)"
            )
        finally:
            hub.stop()
        port_open, healthy, page, cpu = start_timed(hub, viewer, n)
        print(
            f"restart: port answering {port_open:.1f}s, first 200 on /healthz {healthy:.1f}s,"
            f" on / {page:.1f}s after start, {cpu:.1f} CPU-seconds (target <= 10 s)"
        )
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
