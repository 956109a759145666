"""Fleet rollout latency (issue 6): push a commit, time until the whole targeted fleet is Ready on it.

    .venv/bin/python -m tests.benchmarks.bench_rollout [--clusters 10] [--commits 5] [--interval 10] [--waves]

With ``--waves`` (issue 13) the same commits are then pushed again with edge-base staged in three
waves (a canary, half of the rest, then the implicit last wave; ``bakeSeconds: 0``), and the
median of the staged run is printed as a ratio of the unstaged one.

Starts N local clusters (the example repo's 9, plus copies of its clusters under new names when N
is larger), a hub and one agent process per cluster, then pushes commits that change a value
every cluster gets (a value of edge-base, which targets every cluster).  For
each commit it measures the time from ``git push`` to the hub showing every cluster Ready at that
commit.  Prints median and worst, memory per agent, and the hub's CPU use over the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.demo import EXAMPLE, DemoFleet
from tests.localcluster import process_rss


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fleet_clusters(count: int) -> tuple[list[str], dict[str, str]]:
    """``count`` cluster names, and cluster files to add when the example repo has fewer."""
    from agent import fleet

    example = fleet.load_repo(EXAMPLE).clusters
    names = sorted(example)[:count]
    extra: dict[str, str] = {}
    for index in range(count - len(names)):
        template = example[sorted(example)[index % len(example)]]
        name = f"{template.name}-copy{index + 1}"
        document = {
            "apiVersion": fleet.API_VERSION,
            "kind": "Cluster",
            "name": name,
            "labels": dict(template.labels),
        }
        extra[f"clusters/copies/{name}.yaml"] = yaml.safe_dump(document)
        names.append(name)
    return names, extra


def stage(clone: Any, names: list[str]) -> None:
    """Stage edge-base in three waves: the first cluster, then half of the others, then the rest."""
    path = clone.path / "bundles/edge-base/bundle.yaml"
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    second = names[1 : 1 + max(1, (len(names) - 1) // 2)]
    document["rollout"] = {
        "waves": [
            {"name": "canary", "clusterNames": names[:1], "bakeSeconds": 0},
            {"name": "half", "clusterNames": second, "bakeSeconds": 0},
        ]
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def push_commits(
    demo: DemoFleet, clone: Any, names: list[str], count: int, interval: float, tag: str
) -> list[float]:
    """Push ``count`` commits changing a value every cluster gets; seconds from push to fleet Ready, each."""
    samples = []
    for index in range(count):
        path = clone.path / "bundles/edge-base/bundle.yaml"
        document: dict[str, Any] = yaml.safe_load(path.read_text())
        document.setdefault("values", {})["bannerMessage"] = f"{tag} {index}"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        commit = clone.commit_and_push(f"{tag} {index}")
        pushed = time.monotonic()
        while True:
            clusters = {c["name"]: c for c in demo.hub_get("/api/v1/clusters")["clusters"]}
            if all(clusters[n]["commit"] == commit and clusters[n]["health"] == "Ready" for n in names):
                break
            if time.monotonic() - pushed > interval + 300:
                raise SystemExit(f"{tag} commit {index} never reached the whole fleet")
            time.sleep(0.2)
        samples.append(time.monotonic() - pushed)
        print(f"{tag} commit {index + 1}: whole fleet Ready {samples[-1]:.1f}s after push")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--waves", action="store_true", help="also measure with 3 waves, bakeSeconds 0")
    args = parser.parse_args()
    names, extra = fleet_clusters(args.clusters)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; {len(names)} clusters, "
        f"interval {args.interval}s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        demo = DemoFleet(Path(tmp) / "fleet", names, interval=args.interval, seed_files=extra)
        try:
            started = time.monotonic()
            demo.start()
            demo.wait_until_ready(timeout=600)
            print(f"fleet up and Ready in {time.monotonic() - started:.0f}s")
            assert demo.hub is not None
            hub_cpu_before, hub_clock = cpu_seconds(demo.hub.pid), time.monotonic()
            clone = demo.working_clone()
            samples = push_commits(demo, clone, names, args.commits, args.interval, "rollout")
            hub_cpu = cpu_seconds(demo.hub.pid) - hub_cpu_before
            elapsed = time.monotonic() - hub_clock
            print(
                f"push to fleet Ready over {len(samples)} commits: median {statistics.median(samples):.1f}s, "
                f"worst {max(samples):.1f}s (target < interval + 20 s = {args.interval + 20:.0f}s)"
            )
            if args.waves:
                stage(clone, names)
                push_commits(demo, clone, names, 1, args.interval, "staged-warmup")
                staged = push_commits(demo, clone, names, args.commits, args.interval, "staged")
                ratio = statistics.median(staged) / statistics.median(samples)
                print(
                    f"3 waves, bakeSeconds 0: median {statistics.median(staged):.1f}s, "
                    f"worst {max(staged):.1f}s; {ratio:.2f}x the unstaged median"
                )
            rss = [process_rss(p.pid) / 2**20 for p in demo.agents.values()]
            print(f"agent RSS: median {statistics.median(rss):.0f} MiB, max {max(rss):.0f} MiB")
            print(
                f"hub: {hub_cpu:.1f} CPU-s over {elapsed:.0f}s ({100 * hub_cpu / elapsed:.1f}% of one core), "
                f"RSS {process_rss(demo.hub.pid) / 2**20:.0f} MiB"
            )
            total = sum(c.rss_bytes() for c in demo.clusters.values()) / 2**20
            print(f"control planes: {total:.0f} MiB RSS for {len(names)} clusters (etcd not counted)")
        finally:
            demo.stop()


if __name__ == "__main__":
    main()
