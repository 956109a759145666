"""Benchmark: validate generated fleet repos, plan one cluster, and an agent pass after a ref move.

Scales 2,000 x 200, 4,000 x 400 and 8,000 x 800 (clusters x bundles) by default.
Targets: validate of the whole fleet under 2 s at 8,000 x 800 (issue 9; 3 s at 2,000 x 200 in issue 3);
plan one cluster under 200 ms; an agent pass after the ref moved (load with the agent's content
cache, then plan its cluster) under 0.5 s at 8,000 x 800, growing at most linearly with the files.
Wall-clock and CPU seconds are both printed: on a shared machine CPU time is the steadier number.
Run: .venv/bin/python tests/benchmarks/bench_fleet.py [--scales 2000x200,4000x400] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import re
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


def best_of(repeat: int, action: Callable[[], object]) -> tuple[float, float, float]:
    """Best and median wall-clock seconds, and the best CPU seconds, of ``repeat`` runs."""
    timings, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(timings), statistics.median(timings), min(cpu)


def move_ref(root: pathlib.Path, step: int) -> None:
    """What a checkout of the next commit does: rewrite the files it changed (a bundle, a cluster)."""
    bundle = root / "bundles" / "app-005" / "bundle.yaml"
    bundle.write_text(re.sub(r"tag: '[0-9.]+'", f"tag: '1.{step}'", bundle.read_text()))
    cluster = root / "clusters" / "site-00007.yaml"
    cluster.write_text(re.sub(r"ring: r[0-9]+", f"ring: r{step % 10}", cluster.read_text()))


def measure(clusters: int, bundles: int, repeat: int) -> float:
    """Prints the scale's numbers; returns the best CPU seconds of an agent pass after a ref move."""
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-") as temp:
        root = pathlib.Path(temp)
        generate(root, clusters, bundles)
        problems = fleet.validate_repo(root)
        if problems:
            raise SystemExit(f"the generated repo is invalid: {problems[:3]}")
        best, median, cpu = best_of(repeat, lambda: fleet.validate_repo(root))
        print(f"{clusters} x {bundles}: validate: best {best:.3f} s, median {median:.3f} s, cpu {cpu:.3f} s "
              "(target < 2 s at 8000 x 800)")  # fmt: skip
        repo = fleet.load_repo(root)
        cluster = sorted(repo.clusters)[1]
        best, median, cpu = best_of(max(repeat, 20), lambda: fleet.plan_cluster(repo, cluster))
        releases = len(fleet.plan_cluster(repo, cluster).releases)
        print(f"{clusters} x {bundles}: plan {cluster} ({releases} releases): best {best * 1000:.1f} ms, "
              f"median {median * 1000:.1f} ms (target < 200 ms)")  # fmt: skip
        cache = fleet.ContentCache()
        best, _, cpu = best_of(
            1, lambda: fleet.plan_agent(fleet.load_fleet(root, cache=cache), cluster, cache)
        )
        print(f"{clusters} x {bundles}: first agent pass (nothing cached): {best:.3f} s, cpu {cpu:.3f} s")
        steps = iter(range(1, 10_000))

        def agent_pass() -> None:
            move_ref(root, next(steps))
            plan = fleet.plan_agent(fleet.load_fleet(root, cache=cache), cluster, cache)
            assert not plan.problems
            assert len(plan.plan.releases) == releases

        best, median, cpu = best_of(max(repeat, 10), agent_pass)
        print(f"{clusters} x {bundles}: agent pass after a ref move: best {best:.3f} s, "
              f"median {median:.3f} s, cpu {cpu:.3f} s (target < 0.5 s at 8000 x 800)")  # fmt: skip
        return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scales", default="2000x200,4000x400,8000x800", help="CLUSTERSxBUNDLES,...")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load}, "
        f"Python {platform.python_version()}"
    )
    previous: tuple[int, float] | None = None
    for scale in args.scales.split(","):
        clusters, bundles = (int(part) for part in scale.split("x"))
        cpu = measure(clusters, bundles, args.repeat)
        if previous is not None:
            files_ratio = (clusters + bundles) / previous[0]
            print(f"agent pass growth: x{cpu / previous[1]:.2f} in cpu for x{files_ratio:.2f} the files "
                  "(linear: at most the files' ratio)")  # fmt: skip
        previous = (clusters + bundles, cpu)


if __name__ == "__main__":
    main()
