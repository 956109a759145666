"""Self-upgrade timings on a real node (kubelet + containerd, tests/realnode.py): real pods.

    FLOTILLA_TOOLS_BIN=... .venv/bin/python -m tests.benchmarks.bench_realnode [--arch arm64]
        [--deadline 45] [--skip-rollback]

Prints: the node's start (containerd and kubelet up, node Ready); the agent image's build check,
save and import into containerd; bootstrap to the agent pod Ready and reporting; from a commit of a
good build to the new pod Ready and its report at the hub; and from a commit of a build that exits
at start (hub down) to the old pod's automatic rollback (the deadline plus up to one pass).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.image import engine
from tests.integration.realnode.site import bootstrapped_site, exits_at_start, with_env
from tests.localcluster import Fleet, find_tools
from tests.realnode import real_node_cluster


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", choices=["amd64", "arm64"], default="amd64")
    parser.add_argument("--deadline", type=int, default=45, help="the site's --self-upgrade-deadline")
    parser.add_argument("--skip-rollback", action="store_true")
    args = parser.parse_args()
    slow = 900 if args.arch != "amd64" else 240
    with tempfile.TemporaryDirectory(prefix="flotilla-bench-realnode-") as tmp:
        work = Path(tmp)
        fleet = Fleet(work / "fleet", find_tools())
        try:
            started = time.monotonic()
            with real_node_cluster(fleet, "bench", work / "node") as (cluster, node):
                print(f"control plane + real node Ready: {time.monotonic() - started:.1f}s "
                      f"(node alone {node.started_seconds:.1f}s)")  # fmt: skip
                started = time.monotonic()
                engine.ensure_engine()
                engine.build([args.arch], log_path=work / "build.log", python=sys.executable)
                [archive] = engine.save(work, [args.arch], python=sys.executable)
                node.import_archive(archive)
                image = engine.tag(args.arch)
                print(f"image build check + save + import: {time.monotonic() - started:.1f}s")
                with bootstrapped_site(cluster, node, image, work / "site", deadline=args.deadline) as site:
                    started = time.monotonic()
                    site.wait_upgraded(image, slow)
                    print(f"bootstrap -> agent pod Ready and reporting: {time.monotonic() - started:.1f}s")
                    good = node.derive_image(image, f"flotilla-agent:bench-2-{args.arch}", with_env("B=2"))
                    _, seconds = site.upgrade(good, slow)
                    print(f"{args.arch} commit -> new agent Ready and reporting: {seconds:.1f}s")
                    if not args.skip_rollback:
                        broken = node.derive_image(
                            image, f"flotilla-agent:bench-x-{args.arch}", exits_at_start
                        )
                        site.hub.stop()
                        committed = site.commit_agent(broken, "a broken build")
                        record = site.wait(
                            "the rollback",
                            lambda: (r := site.record()) is not None and r["result"] == "rolled-back" and r,
                            args.deadline + slow,
                        )
                        seconds = record["finished_at"] - committed
                        what = f"{args.arch} commit -> automatic rollback"
                        print(f"{what}: {seconds:.1f}s, deadline {args.deadline}s")
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
