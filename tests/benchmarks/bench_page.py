"""Benchmark of the operator's views: server time and size of each page and API answer at fleet scale.

Run: .venv/bin/python tests/benchmarks/bench_page.py [--clusters 10000 100000] [--repeat 5]

For each fleet size, writes a generated fleet (tests/integration/hub/genfleet.py: 8 regions, 1/7
failing with one cause, a rollout in progress) into a fresh store, starts a real
`flotilla-hub serve --read-cache-seconds 0` subprocess (every request rendered afresh; a staged
rollout's evaluation is still reused for ``--rollout-view-seconds``, 1 s: the max column shows a
request that evaluated it) and prints,
per path, the median and worst time of ``--repeat`` requests and the answer's size, then the size of
an unchanged refresh (304 by ETag), the hub's start-up time and RSS. It also times the read model's
``put`` with and without the fleet index attached (the index's cost on ingest). Target (the hub
issue's budget): every page and API answer <= 250 ms at 100,000 clusters.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hub import fleetindex
from hub.connectivity import Thresholds
from hub.model import summarize
from hub.readmodel import ReadModel
from tests.integration.hub.genfleet import seed
from tests.integration.hub.hubserver import SubprocessHub, create_viewer
from tests.unit.hub.factory import make_bundle, make_report

PATHS = [
    "/",
    "/?group=site",
    "/?selector=region%3Deu-west&health=Failed",
    "/errors",
    "/errors/{error}",
    "/versions",
    "/versions/web",
    "/history",
    "/history?window=7d",
    "/clusters/store-000007/history",
    "/api/v1/glance",
    "/api/v1/glance?group=site",
    "/api/v1/errors",
    "/api/v1/errors/{error}?limit=1000",
    "/api/v1/versions",
    "/api/v1/versions/web",
    "/api/v1/history",
]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_fleet(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        data_dir = Path(tmp) / "hub"
        started = time.perf_counter()
        seeded = seed(data_dir, count)
        print(f"\n== {count} clusters (seeded in {time.perf_counter() - started:.1f} s: {seeded})")
        viewer = create_viewer(data_dir)
        hub = SubprocessHub(data_dir, extra_args=("--read-cache-seconds", "0"))
        started = time.perf_counter()
        hub.start(timeout=300)
        print(f"hub start-up to /healthz: {time.perf_counter() - started:.2f} s")
        headers = {"Authorization": f"Bearer {viewer}"}
        try:
            with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as client:
                error = client.get("/api/v1/errors").json()["errors"][0]["id"]
                print(f"{'path':<48} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
                for path in PATHS:
                    url = path.format(error=error)
                    times, size = [], 0
                    for _ in range(repeat):
                        t = time.perf_counter()
                        response = client.get(url)
                        times.append((time.perf_counter() - t) * 1000)
                        response.raise_for_status()
                        size = len(response.content)
                    print(f"{url[:48]:<48} {statistics.median(times):>10.1f} {max(times):>8.1f} {size:>9}")
                first = client.get("/api/v1/versions")
                again = client.get("/api/v1/versions", headers={"If-None-Match": first.headers["etag"]})
                print(
                    f"unchanged refresh of /api/v1/versions: {again.status_code}, {len(again.content)} bytes"
                )
            assert hub.process is not None
            print(f"hub RSS: {rss_mib(hub.process.pid):.0f} MiB")
        finally:
            hub.stop()


def bench_ingest_cost(count: int = 20_000) -> None:
    """model.put per report, without and with the fleet index (a cluster whose error moves commits)."""
    summaries = []
    for i in range(count):
        state = "Failed" if i % 7 == 0 else "Ready"
        bundles = [make_bundle("web", state, "a1b2c3d" if i % 2 else "9f1e0d0", message=f"timeout {i}s")]
        bundles += [make_bundle("db"), make_bundle("metrics")]
        report = make_report(
            f"store-{i % 5000:06d}", i + 1, bundles, labels={"region": f"r{i % 8}", "arch": "arm64"}
        )
        summaries.append(summarize(report, 1000.0 + i))
    for attach in (False, True):
        model = ReadModel(Thresholds(), (), 1000.0)
        if attach:
            fleetindex.attach(model, 1000.0)
        started = time.perf_counter()
        for s in summaries:
            model.put(replace(s), s.reported_at)
        per = (time.perf_counter() - started) / count * 1e6
        print(f"read model put, fleet index {'attached' if attach else 'absent  '}: {per:.1f} µs per report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    bench_ingest_cost()
    for count in args.clusters:
        bench_fleet(count, args.repeat)


if __name__ == "__main__":
    main()
