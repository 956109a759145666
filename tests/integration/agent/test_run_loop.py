"""`flotilla-agent run` as a process: a commit to a local-path fleet repo wakes it long before its
interval is up (watchdog), and SIGTERM ends it cleanly."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.integration.agent.harness import PassWatcher, bundle_file, cluster_file

pytestmark = pytest.mark.cluster


def test_a_commit_to_a_local_path_repo_wakes_the_loop_and_sigterm_stops_it(
    cluster, git_server, fleet_repo_factory, harness_factory, unique
):
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/web/bundle.yaml": bundle_file("web", unique, targets=[{"clusterName": unique}]),
        }
    )
    local_path = str(git_server.repo_path(repo.url.rsplit("/", 1)[1].removesuffix(".git")))
    agent = harness_factory(cluster, unique, local_path)
    command = agent.command("run")
    command[command.index("--repo-url") + 1] = local_path
    process = subprocess.Popen([*command, "--interval", "600"], stderr=subprocess.PIPE, text=True)
    passes = PassWatcher(process).passes
    try:
        deadline = time.monotonic() + 120
        while not passes:
            assert time.monotonic() < deadline, "no first pass"
            time.sleep(0.2)
        assert passes[0]["health"] == "Ready"

        commit = repo.write(
            {
                "bundles/web/bundle.yaml": bundle_file(
                    "web", unique, values={"region": "woken"}, targets=[{"clusterName": unique}]
                )
            },
            "wake up",
        )
        deadline = time.monotonic() + 60  # the interval is 600 s: only the watchdog can explain a pass
        while len(passes) < 2 or passes[-1]["commit"] != commit[:12]:
            assert time.monotonic() < deadline, f"the commit did not wake the loop: {passes}"
            time.sleep(0.2)
        configmap = cluster.api(f"/api/v1/namespaces/{unique}/configmaps/web-config")
        assert configmap["data"]["region"] == "woken"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "SIGTERM must end the agent cleanly"
