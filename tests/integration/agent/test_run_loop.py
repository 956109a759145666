"""`flotilla-agent run` as a process: a commit to a local-path fleet repo wakes it long before its
interval is up (watchdog), and SIGTERM ends it cleanly, its last report delivered."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from tests.integration.agent.harness import PassWatcher, bundle_file, cluster_file
from tests.integration.hub.hubserver import SubprocessHub, create_token, create_viewer

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


def test_sigterm_delivers_the_last_report_at_once_even_while_the_hub_was_backing_off(
    cluster, git_server, fleet_repo_factory, harness_factory, unique, tmp_path
):
    """The hub was down (the agent backs off between tries); it comes back and the agent is stopped
    before its next try: the last pass's report still reaches the hub, it is not left for the next
    start to send."""
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {}),
            "bundles/web/bundle.yaml": bundle_file("web", unique, targets=[{"clusterName": unique}]),
        }
    )
    hub = SubprocessHub(tmp_path / "hub")
    token = create_token(hub.data_dir, unique)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    agent = harness_factory(cluster, unique, repo.url)
    command = [
        *agent.command("run"),
        "--interval",
        "600",
        "--hub-url",
        hub.url,
        "--hub-token-file",
        str(token_file),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    watcher = PassWatcher(process)
    try:
        watcher.wait_for(lambda p: p["health"] == "Ready", "a first pass")
        outbox = agent.state_dir / "outbox"
        deadline = time.monotonic() + 20  # let the backoff grow past a few seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
        assert list(outbox.glob("*.json")), "the report waits in the outbox while the hub is down"
        hub.start()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not list(outbox.glob("*.json")), "the last report was left behind"
        viewer = create_viewer(hub.data_dir)
        seen = httpx.get(f"{hub.url}/api/v1/clusters/{unique}", headers={"Authorization": f"Bearer {viewer}"})
        assert seen.status_code == 200
        assert seen.json()["health"] == "Ready"
    finally:
        if process.poll() is None:
            process.kill()
        hub.stop()
