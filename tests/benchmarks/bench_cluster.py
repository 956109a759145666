"""Start time and memory of local test clusters (issue 2's numbers).

    .venv/bin/python -m tests.benchmarks.bench_cluster [--clusters 3]

Prints the start time of each cluster (with the tools already built) and the resident memory of all
control-plane processes together (shared etcd included), after one cluster and after N.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from tests.localcluster import Fleet, find_tools


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before memory is read")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    tools = find_tools()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as workdir:
        fleet = Fleet(Path(workdir), tools)
        try:
            for index in range(args.clusters):
                started = time.monotonic()
                fleet.add(f"bench-{index}")
                print(f"cluster {index + 1}: ready in {time.monotonic() - started:.1f}s")
                if index == 0:
                    time.sleep(args.settle)
                    print(f"memory with 1 cluster: {fleet.rss_bytes() / 2**20:.0f} MiB RSS (all processes)")
            time.sleep(args.settle)
            total = fleet.rss_bytes() / 2**20
            print(f"memory with {args.clusters} clusters: {total:.0f} MiB RSS (all processes)")
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
