"""Benchmark: validate a generated fleet repo of 2,000 clusters and 200 bundles, then plan one cluster.

Targets (issue 3): validate under 3 s, plan one cluster under 200 ms on the 2-core CI machine.
Run: .venv/bin/python tests/benchmarks/bench_fleet.py [--clusters N] [--bundles N] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

from agent import fleet

REGIONS = ("eu-west", "eu-central", "us-east", "us-west", "ap-south", "ap-east", "sa-east", "af-south")
ARCHES = ("amd64", "arm64")
TIERS = ("store", "factory", "warehouse")


def generate(root: pathlib.Path, clusters: int, bundles: int) -> None:
    """A repo shaped like a real fleet: labelled clusters, groups, bundles with several targets."""
    (root / "clusters").mkdir(parents=True)
    (root / "groups").mkdir()
    (root / "charts" / "app" / "templates").mkdir(parents=True)
    (root / "charts" / "app" / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.0.0\n")
    (root / "charts" / "app" / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    for index in range(clusters):
        region = REGIONS[index % len(REGIONS)]
        (root / "clusters" / f"site-{index:05d}.yaml").write_text(
            "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\n"
            f"name: site-{index:05d}\nlabels:\n  region: {region}\n  arch: {ARCHES[index % 2]}\n"
            f"  tier: {TIERS[index % 3]}\n  site: s{index}\n  ring: r{index % 10}\n"
        )
    for region in REGIONS:
        (root / "groups" / f"{region}.yaml").write_text(
            f"apiVersion: flotilla.dev/v1alpha1\nkind: ClusterGroup\nname: {region}\n"
            f"selector:\n  matchLabels:\n    region: {region}\n"
        )
    for index in range(bundles):
        directory = root / "bundles" / f"app-{index:03d}"
        directory.mkdir(parents=True)
        depends = f"dependsOn:\n  - app-{index - 1:03d}\n" if index % 10 else ""
        chart = (
            "chart:\n  path: ../../charts/app\n"
            if index % 3
            else "chart:\n  repo: https://charts.example.com\n  name: app\n  version: ^1.2.0\n"
        )
        region_targets = "".join(
            f"  - clusterGroup: {region}\n    values:\n      region: {region}\n      replicas: {n + 1}\n"
            for n, region in enumerate(REGIONS)
        )
        (directory / "bundle.yaml").write_text(
            f"apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nname: app-{index:03d}\n"
            f"namespace: ns-{index // 10}\n{chart}{depends}"
            "values:\n  image:\n    repository: registry.example.com/app\n    tag: '1.0'\n"
            "  resources:\n    limits:\n      memory: 128Mi\n"
            f"targets:\n{region_targets}"
            "  - clusterSelector:\n      matchExpressions:\n        - key: arch\n          operator: In\n"
            "          values: [arm64]\n"
            "    values:\n      resources:\n        limits:\n          memory: 64Mi\n"
        )


def best_of(repeat: int, action: Callable[[], object]) -> tuple[float, float]:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--bundles", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load}, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as temp:
        root = pathlib.Path(temp)
        generate(root, args.clusters, args.bundles)
        print(f"generated {args.clusters} clusters and {args.bundles} bundles in {root}")
        problems = fleet.validate_repo(root)
        if problems:
            raise SystemExit(f"the generated repo is invalid: {problems[:3]}")
        best, median = best_of(args.repeat, lambda: fleet.validate_repo(root))
        print(f"validate: best {best:.3f} s, median {median:.3f} s (target < 3 s)")
        repo = fleet.load_repo(root)
        cluster = sorted(repo.clusters)[1]
        best, median = best_of(max(args.repeat, 20), lambda: fleet.plan_cluster(repo, cluster))
        releases = len(fleet.plan_cluster(repo, cluster).releases)
        print(
            f"plan {cluster} ({releases} releases): best {best * 1000:.1f} ms, "
            f"median {median * 1000:.1f} ms (target < 200 ms)"
        )


if __name__ == "__main__":
    main()
