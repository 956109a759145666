"""Load generation for bench_hub: realistic reports, a minimal keep-alive HTTP/1.1 client, floods,
paced (open-loop) ingest and readers looping on the page and the API."""

from __future__ import annotations

import asyncio
import random
import time

from hub.contract import BUNDLE_STATES, ResourceStatus
from tests.unit.hub.factory import make_bundle, make_report

COMMITS = ["a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", "9f1e0d8c7b6a5948372615f4e3d2c1b0a9988776"]


def report_body(cluster: str, sequence: int, bundles: int, rng: random.Random) -> bytes:
    """About 6.6 KB for 10 bundles: digests, chart versions, resource lists and messages that vary."""
    commit = rng.choice(COMMITS)
    items = []
    for index in range(bundles):
        state = rng.choices(BUNDLE_STATES, weights=[1, 1, 1, 2, 1, 1, 40])[0]
        pods = [
            ResourceStatus(
                "Pod",
                "apps",
                f"bundle-{index}-{rng.getrandbits(40):010x}",
                "CrashLoopBackOff" if state != "Ready" else "Running",
                f"back-off {rng.randint(10, 300)}s restarting failed container app"
                f" in pod (exit {rng.randint(1, 255)})",
            )
            for _ in range(3 if state != "Ready" else 0)
        ]
        bundle = make_bundle(f"bundle-{index}", state, commit, message="" if state == "Ready" else "x" * 200)
        items.append(
            type(bundle)(
                **{
                    **bundle.__dict__,
                    "digest": f"sha256:{rng.getrandbits(256):064x}",
                    "values_digest": f"sha256:{rng.getrandbits(256):064x}",
                    "chart_version": f"1.{index}.{rng.randint(0, 3)}",
                    "helm_revision": rng.randint(1, 40),
                    "non_ready": pods,
                    "resources_total": 12,
                    "resources_ready": 12 - len(pods),
                }
            )
        )
    report = make_report(
        cluster,
        sequence,
        items,
        labels={
            "region": rng.choice(["eu", "us", "ap"]),
            "tier": rng.choice(["edge", "store", "prod"]),
            "site": f"site-{rng.randint(0, 2000):04d}",
            "arch": rng.choice(["amd64", "arm64"]),
        },
        commit=commit,
    )
    return report.to_json().encode()


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: str, body: bytes = b"") -> tuple[int, int]:
        """Send one request on the kept-alive connection; (status, body length)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(head.encode() + body)
        headers = await self.reader.readuntil(b"\r\n\r\n")
        status = int(headers[9:12])
        length = 0
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await self.reader.readexactly(length)
        if b"connection: close" in headers.lower():
            self.writer.close()
            self.writer = None
        return status, length

    async def post(self, token: str, body: bytes) -> int:
        head = (
            f"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return (await self.request(head, body))[0]

    async def get(self, path: str, viewer: str) -> tuple[int, int]:
        return await self.request(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {viewer}\r\n\r\n"
        )


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
        started = time.perf_counter()  # from the scheduled send: waiting for a connection counts
        connection = await pool.get()
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


async def readers(port: int, viewer: str, paths: list[str], count: int, stop: asyncio.Event) -> list[float]:
    """``count`` readers, each looping over ``paths`` until ``stop``; every read's latency."""
    timings: list[float] = []

    async def reader(offset: int) -> None:
        connection = Connection(port)
        index = offset
        while not stop.is_set():
            started = time.perf_counter()
            status, _ = await connection.get(paths[index % len(paths)], viewer)
            timings.append(time.perf_counter() - started)
            assert status == 200, (paths[index % len(paths)], status)
            index += 1

    await asyncio.gather(*(reader(i) for i in range(count)))
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * fraction) - 1)] if ordered else float("nan")
