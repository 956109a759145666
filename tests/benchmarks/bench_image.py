"""Agent image benchmarks (issue 12): size, memory in the container, emulated pass cost, build time.

    .venv/bin/python -m tests.benchmarks.bench_image [--arches amd64 arm64 armv7] [--idle-passes 10]

Everything is real: the images from tests/image/build.sh in the local Docker engine (arm64 and
arm/v7 under QEMU), each run as the pod from ``flotilla-agent manifests`` (see
tests/integration/image/deploy.py) against its own local control plane, a Git server and a hub.
Every architecture reconciles the same example cluster (eu-west-lyon-1: five active bundles) with
no CPU limit, so the ratios compare like with like.  Prints:

- image size per architecture: unpacked (the engine's count) and compressed (``docker save | gzip``,
  about what a registry stores) -- goal <= 100 MB compressed;
- agent RSS in the amd64 container after N idle passes (VmRSS of the agent process) -- goal <= 50 MiB;
- the install pass and a no-change pass: wall and CPU seconds per architecture and the ratio to amd64;
- ``tests/image/build.sh`` with everything cached (warm); the cold figure is the first build's log.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.image import engine
from tests.integration.image.deploy import deployed_agent
from tests.localcluster import Fleet, process_rss

EXAMPLE_CLUSTER = "eu-west-lyon-1"
MIB = 1024 * 1024


def compressed_size(image: str) -> int:
    """Bytes of ``docker save IMAGE | gzip -6``."""
    process = subprocess.Popen([engine.DOCKER, "save", image], stdout=subprocess.PIPE)
    assert process.stdout is not None
    counter = _Counter()
    with gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6) as sink:
        while chunk := process.stdout.read(1024 * 1024):
            sink.write(chunk)
    if process.wait() != 0:
        raise engine.EngineError(f"docker save {image} failed")
    return counter.size


class _Counter:
    size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def sizes(arches: list[str]) -> None:
    print("image size (unpacked / compressed with gzip -6):")
    for arch in arches:
        unpacked = int(str(engine.inspect_image(engine.tag(arch))["Size"]))
        print(f"  {arch:6} {unpacked / 1e6:7.1f} MB / {compressed_size(engine.tag(arch)) / 1e6:6.1f} MB")


def agent_pid(init: int) -> int:
    """The agent's process: the container's PID 1 is tini, the agent its child."""
    children = Path(f"/proc/{init}/task/{init}/children")
    found = children.read_text().split() if children.exists() else []
    return int(found[0]) if found else init


def passes(fleet: Fleet, arch: str, workdir: Path, idle_passes: int) -> dict[str, Any]:
    """Install pass + ``idle_passes`` no-change passes for ``arch``: timings, and RSS at the end."""
    cluster = fleet.add(f"bench-{arch}", node_labels={"kubernetes.io/arch": arch})
    try:
        with deployed_agent(
            arch, "cluster-admin", cluster, engine.tag(arch), workdir / arch,
            example_cluster=EXAMPLE_CLUSTER, interval=2, limit_cpu=False,
        ) as deployed:  # fmt: skip
            timeout = 600 + 400 * idle_passes if arch != "amd64" else 300 + 30 * idle_passes
            container = deployed.container
            idle = container.wait_for_event(
                "pass_finished",
                timeout=timeout,
                count=idle_passes,
                where=lambda e: e["health"] == "Ready" and e["helm_calls"] == 0,
            )[:idle_passes]
            pid = agent_pid(int(str(container.state()["Pid"])))
            install = container.wait_for_event("pass_finished", timeout=1)[0]
            if not install["helm_calls"]:
                raise SystemExit(f"{arch}: the first pass installed nothing:\n{container.logs()}")
            return {
                "install_wall": float(str(install["seconds"])),
                "install_cpu": float(str(install["cpu_seconds"])),
                "idle_wall": statistics.median(float(str(e["seconds"])) for e in idle),
                "idle_cpu": statistics.median(float(str(e["cpu_seconds"])) for e in idle),
                "rss": process_rss(pid),
                "cgroup_rss": container.stats_rss_bytes(),
            }
    finally:
        fleet.remove(cluster.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arches", nargs="+", default=list(engine.ARCHES), choices=engine.ARCHES)
    parser.add_argument("--idle-passes", type=int, default=10)
    parser.add_argument("--skip-build", action="store_true", help="use the images as they are")
    args = parser.parse_args(argv)

    engine.ensure_engine()
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        workdir = Path(tmp)
        if not args.skip_build:
            started = time.monotonic()
            engine.build(args.arches, log_path=workdir / "build.log", python=sys.executable)
            print(f"tests/image/build.sh {' '.join(args.arches)} (warm if built before): "
                  f"{time.monotonic() - started:.1f} s")  # fmt: skip
        sizes(args.arches)
        fleet = Fleet(workdir / "fleet")
        results: dict[str, dict[str, Any]] = {}
        try:
            for arch in args.arches:
                results[arch] = passes(fleet, arch, workdir, args.idle_passes)
        finally:
            fleet.stop()
    base = results.get("amd64")
    print(f"passes over {EXAMPLE_CLUSTER} (median of {args.idle_passes} no-change passes; ratio to amd64):")
    for arch, r in results.items():
        ratio = ""
        if base and arch != "amd64":
            ratio = (
                f"  x{r['install_wall'] / base['install_wall']:.1f} install wall, "
                f"x{r['idle_wall'] / base['idle_wall']:.1f} / x{r['idle_cpu'] / base['idle_cpu']:.1f} "
                "no-change wall / CPU"
            )
        print(
            f"  {arch:6} install {r['install_wall']:6.1f} s wall {r['install_cpu']:6.1f} s CPU; "
            f"no-change {r['idle_wall']:6.2f} s wall {r['idle_cpu']:6.2f} s CPU{ratio}"
        )
    if base:
        print(
            f"agent RSS in the amd64 container after {args.idle_passes} idle passes: "
            f"{base['rss'] / MIB:.1f} MiB (cgroup rss {base['cgroup_rss'] / MIB:.1f} MiB; goal <= 50 MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
