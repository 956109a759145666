"""Hub benchmark: a simulated fleet of 5,000 clusters x 10 bundles reporting to one hub process.

Run: .venv/bin/python tests/benchmarks/bench_hub.py [--clusters 5000] [--bundles 10]

Prints: sustained accepted reports/s (target >= 1,000), p50/p99 ingest latency at 300 reports/s
(target p99 < 50 ms), time of `/` and `/api/v1/summary` with the whole fleet (target < 250 ms),
and the hub's RSS (target < 300 MiB). The hub is a real `flotilla-hub serve` subprocess with SQLite
on local disk; the load generator is a minimal asyncio HTTP/1.1 client with keep-alive connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub import store
from hub.contract import BUNDLE_STATES
from tests.integration.hub.hubserver import SubprocessHub, create_viewer
from tests.unit.hub.factory import make_bundle, make_report


def report_body(cluster: str, sequence: int, bundles: int, rng: random.Random) -> bytes:
    commit = rng.choice(["a1b2c3d4e5", "9f1e0d8c7b"])
    states = [rng.choices(BUNDLE_STATES, weights=[1, 1, 1, 2, 1, 1, 40])[0] for _ in range(bundles)]
    report = make_report(
        cluster,
        sequence,
        [
            make_bundle(f"bundle-{i}", state, commit, message="" if state == "Ready" else "x" * 200)
            for i, state in enumerate(states)
        ],
        labels={"region": rng.choice(["eu", "us", "ap"]), "tier": rng.choice(["edge", "store", "prod"])},
        commit=commit,
    )
    return report.to_json().encode()


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, token: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        return status


async def flood(port: int, jobs: list[tuple[str, bytes]], concurrency: int) -> tuple[float, int]:
    """Send every job as fast as the hub takes them; return (seconds, accepted)."""
    queue = iter(jobs)
    accepted = 0

    async def worker() -> None:
        nonlocal accepted
        connection = Connection(port)
        for token, body in queue:
            if await connection.post(token, body) in (200, 202):
                accepted += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, accepted


async def paced(port: int, jobs: list[tuple[str, bytes]], rate: float, concurrency: int) -> list[float]:
    """Send jobs at a fixed rate (open loop); return each request's latency in seconds."""
    latencies: list[float] = []
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(Connection(port))

    async def one(token: str, body: bytes) -> None:
        connection = await pool.get()
        started = time.perf_counter()
        status = await connection.post(token, body)
        latencies.append(time.perf_counter() - started)
        pool.put_nowait(connection)
        assert status in (200, 202), status

    tasks = []
    start = time.perf_counter()
    for index, (token, body) in enumerate(jobs):
        delay = start + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(token, body)))
    await asyncio.gather(*tasks)
    return latencies


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def time_get(url: str, viewer: str, path: str, runs: int = 10) -> tuple[float, float, int]:
    timings = []
    size = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {viewer}"}, timeout=30) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            size = len(response.content)
    return statistics.median(timings), max(timings), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=5000)
    parser.add_argument("--bundles", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="reports per cluster in the throughput phase")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    args = parser.parse_args()
    rng = random.Random(7)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")

    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        data_dir = Path(tmp)
        names = [f"edge-{i:05d}" for i in range(args.clusters)]
        conn = store.connect(data_dir)
        tokens = store.create_tokens(conn, "cluster", names)
        conn.close()
        viewer = create_viewer(data_dir)
        hub = SubprocessHub(data_dir).start()
        assert hub.process is not None
        try:
            print(f"building {args.clusters * args.rounds} reports of {args.bundles} bundles ...", flush=True)
            jobs = [
                (tokens[name], report_body(name, seq, args.bundles, rng))
                for seq in range(1, args.rounds + 1)
                for name in names
            ]
            print(f"report size: {len(jobs[0][1])} bytes")
            cpu_before = cpu_seconds(hub.process.pid)
            seconds, accepted = asyncio.run(flood(hub.port, jobs, args.concurrency))
            cpu_used = cpu_seconds(hub.process.pid) - cpu_before
            print(
                f"throughput: {accepted} reports accepted in {seconds:.1f}s = "
                f"{accepted / seconds:.0f} reports/s "
                f"({args.concurrency} concurrent connections; target >= 1000)"
            )
            print(
                f"hub CPU per accepted report: {cpu_used / accepted * 1000:.2f} ms "
                f"(= {accepted / cpu_used:.0f} reports per CPU-second of the hub process); "
                f"load average during the run: {os.getloadavg()[0]:.1f}"
            )
            count = int(args.rate * args.paced_seconds)
            paced_jobs = [
                (tokens[name], report_body(name, args.rounds + 1 + i // args.clusters, args.bundles, rng))
                for i, name in enumerate(rng.choice(names) for _ in range(count))
            ]
            latencies = sorted(asyncio.run(paced(hub.port, paced_jobs, args.rate, args.concurrency)))
            p50 = latencies[len(latencies) // 2] * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            print(
                f"latency at {args.rate:.0f} reports/s over {count} reports: p50 {p50:.1f} ms, "
                f"p99 {p99:.1f} ms, max {latencies[-1] * 1000:.1f} ms (target p99 < 50 ms)"
            )
            for path in ("/", "/api/v1/summary", "/api/v1/clusters", "/bundles/bundle-3"):
                median, worst, size = time_get(hub.url, viewer, path)
                print(
                    f"GET {path}: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms, {size} bytes"
                    + (" (target < 250 ms)" if path in ("/", "/api/v1/summary") else "")
                )
            rss, peak = rss_mib(hub.process.pid)
            print(f"hub RSS: {rss:.0f} MiB now, {peak:.0f} MiB peak (target < 300 MiB)")
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
