"""Bootstrap and self-upgrade timings on a local control plane (kwok node, agent passes in-process).

    FLOTILLA_TOOLS_BIN=... .venv/bin/python -m tests.benchmarks.bench_selfupgrade [--deadline 5]

Prints: the wall time of ``flotilla-agent bootstrap`` (first run and the idempotent re-run); from a
commit bumping the agent's image to the pass that upgraded the agent's own release (the agent side
of "commit to new agent"; a real pod adds image start and its first pass); and from a commit to a
build that never completes a pass to the old agent's automatic rollback (the deadline plus passes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import tempfile
import time
from pathlib import Path

import yaml

from agent import cli
from tests.fixtures.gitserver import GitServer
from tests.integration.agent.harness import AgentHarness, bundle_file, cluster_file, make_fleet_repo
from tests.localcluster import Fleet, find_tools


def _timed(label: str, action: object) -> float:
    started = time.monotonic()
    action()  # type: ignore[operator]
    seconds = time.monotonic() - started
    print(f"{label}: {seconds:.2f}s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=5.0, help="FLOTILLA_SELF_UPGRADE_DEADLINE")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    tools = find_tools()
    with tempfile.TemporaryDirectory(prefix="bench-self-") as workdir:
        work = Path(workdir)
        fleet = Fleet(work / "fleet", tools)
        try:
            cluster = fleet.add("bench-self")
            with GitServer(work / "git") as server:
                repo = make_fleet_repo(
                    server,
                    work,
                    "fleet",
                    {
                        "clusters/site.yaml": cluster_file("site", {}),
                        "bundles/web/bundle.yaml": bundle_file(
                            "web", "web", targets=[{"clusterName": "site"}]
                        ),
                    },
                )
                command = [
                    "bootstrap", "--kubeconfig", str(cluster.kubeconfig), "--helm", tools.helm,
                    "--cluster", "site", "--repo-url", repo.url, "--state-storage", "emptyDir",
                    "--image", "flotilla-agent:1", "--write-bundle", str(repo.clone.path),
                ]  # fmt: skip
                quiet = contextlib.redirect_stdout(io.StringIO())

                def bootstrap() -> None:
                    with quiet:
                        assert cli.main(command) == 0

                _timed("bootstrap (install + bundle)", bootstrap)
                _timed("bootstrap again (no change)", bootstrap)
                repo.clone.commit_and_push("manage the agent from Git")
                os.environ["FLOTILLA_IMAGE"] = "flotilla-agent:1"
                os.environ["FLOTILLA_SELF_UPGRADE_DEADLINE"] = str(args.deadline)
                agent = AgentHarness(cluster, "site", repo.url, work / "state")
                _timed("first pass (takes over its own release)", agent.run_pass)

                def commit_image(image: str) -> None:
                    path = repo.clone.path / "bundles/flotilla-system/bundle.yaml"
                    bundle = yaml.safe_load(path.read_text())
                    bundle["values"]["image"] = image
                    repo.write({"bundles/flotilla-system/bundle.yaml": yaml.safe_dump(bundle)}, image)

                started = time.monotonic()
                commit_image("flotilla-agent:broken")
                agent.run_pass()
                upgraded = time.monotonic() - started
                while agent.run_pass()[1].self_upgrade_result.split(":")[0] != "rolled-back":
                    time.sleep(0.5)
                print(f"commit to own release upgraded (agent side): {upgraded:.2f}s")
                print(
                    f"commit to automatic rollback of a never-ready build (deadline {args.deadline:.0f}s): "
                    f"{time.monotonic() - started:.2f}s"
                )
                agent.restart()
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
