"""The agent upgrading itself as real pods on a real node (kubelet + containerd, tests/realnode.py),
installed by ``flotilla-agent bootstrap`` and changed only by ``git commit``:

- a good build replaces the running agent: the new pod becomes Ready and reports its image, and the
  workload release is not touched;
- a build whose entrypoint exits, committed while the hub is down: the old pod (never stopped) rolls
  the release back by itself past the deadline, the hub learns of it when it returns, and the next
  ordinary commit applies;
- (FLOTILLA_REAL_NODE_FULL=1) a build that starts but cannot read the repo is rolled back too;
  SIGKILL of the agent's container in the middle of its own upgrade converges to one healthy agent
  on the new build; arm64 under emulation upgrades to a good build.

The builds are derived from the image ``make image`` builds (its layers, a changed config), so
they exist in the node's containerd and are never pulled.  Times from commit to result are printed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agent.test_self_upgrade_pending import leave_pending
from tests.integration.realnode.site import Site, bootstrapped_site, exits_at_start, with_env
from tests.localcluster import Cluster
from tests.realnode import RealNode

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.image, pytest.mark.timeout(1800)]
full_only = pytest.mark.skipif(
    os.environ.get("FLOTILLA_REAL_NODE_FULL") != "1", reason="slow: set FLOTILLA_REAL_NODE_FULL=1"
)
DEADLINE = 45  # seconds a new agent build has to complete a pass (the site's --self-upgrade-deadline)
UPGRADE_TIMEOUT = 240


@pytest.fixture
def images(real_node: tuple[Cluster, RealNode], real_node_image: Callable[[str], str]) -> Callable[..., str]:
    """``images(name, change, arch="amd64")``: a build derived from the agent image."""
    _, node = real_node

    def make(name: str, change: Callable[[dict[str, Any]], None], arch: str = "amd64") -> str:
        return node.derive_image(real_node_image(arch), f"flotilla-agent:{name}-{arch}", change)

    return make


@pytest.fixture
def site_factory(real_node: tuple[Cluster, RealNode], tmp_path: Path) -> Iterator[Callable[..., Site]]:
    cluster, node = real_node
    stack: list[Any] = []

    def make(image: str, timeout: float = UPGRADE_TIMEOUT, deadline: int = DEADLINE) -> Site:
        context = bootstrapped_site(cluster, node, image, tmp_path / f"site{len(stack)}", deadline=deadline)
        site = context.__enter__()
        stack.append(context)
        site.wait_upgraded(image, timeout)  # bootstrap: the agent runs as a real pod and reports Ready
        return site

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)


def report_time(what: str, seconds: float) -> None:
    print(f"\n[real node] {what}: {seconds:.1f}s")


def test_a_commit_to_a_good_build_replaces_the_agent_pod_and_the_new_one_reports(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    first = real_node_image("amd64")
    site = site_factory(first)
    [(old_uid, _)] = site.ready_agents()
    web = site.release_revision(site.app_namespace, "web")
    good = images("build-2", with_env("FLOTILLA_TEST_BUILD=2"))

    report, seconds = site.upgrade(good, UPGRADE_TIMEOUT)
    report_time("amd64 commit -> new agent Ready and reporting", seconds)

    [(new_uid, _)] = site.ready_agents()
    assert new_uid != old_uid, "the pod was not replaced"
    record = site.record()
    assert record is not None
    assert (record["from_image"], record["to_image"], record["result"]) == (first, good, "succeeded")
    assert report.self_upgrade_result == "succeeded: the new agent completed a pass"
    assert (report.self_upgrade_from, report.self_upgrade_to) == (first, good)
    assert site.release_revision(site.app_namespace, "web") == web, "the workload was upgraded too"


def test_a_build_that_exits_at_start_is_rolled_back_by_the_old_pod_with_the_hub_down(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    first = real_node_image("amd64")
    site = site_factory(first)
    [(old_uid, _)] = site.ready_agents()
    web = site.release_revision(site.app_namespace, "web")
    broken = images("exits", exits_at_start)

    site.hub.stop()
    committed = site.commit_agent(broken, "agent: a broken build")
    site.wait("the broken build deployed", lambda: site.deployment_image() == broken, 60)

    def rolled_back() -> dict[str, Any] | None:
        record = site.record()
        return record if record is not None and record["result"] == "rolled-back" else None

    record = site.wait("the rollback", rolled_back, DEADLINE + 120)
    report_time("amd64 commit -> automatic rollback", float(record["finished_at"]) - committed)
    assert (record["from_image"], record["to_image"]) == (first, broken)
    site.wait("the Deployment back on the old build", lambda: site.deployment_image() == first, 30)
    site.wait("the broken pod gone", lambda: len(site.agent_pods()) == 1, 120)
    assert site.ready_agents() == [(old_uid, first)], "the old agent did not keep running"
    assert site.release_revision(site.app_namespace, "web") == web

    # the hub returns: the next report says what happened while it was away
    site.hub.start()

    report = site.wait_reported("rolled-back", 60)
    assert f"agent {broken} did not complete a pass within {DEADLINE}s" in report.self_upgrade_result
    assert report.agent_image == first

    # the next ordinary commit applies
    site.upgrade(images("build-3", with_env("FLOTILLA_TEST_BUILD=3")), UPGRADE_TIMEOUT)
    assert site.release_revision(site.app_namespace, "web") == web


@full_only
def test_a_build_that_cannot_read_the_repo_is_rolled_back(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    first = real_node_image("amd64")
    site = site_factory(first)
    blind = images("no-git", with_env("GIT_EXEC_PATH=/nonexistent"))  # git's helpers are missing
    committed = site.commit_agent(blind, "agent: a build without git helpers")

    report = site.wait_reported("rolled-back", DEADLINE + 180)
    report_time("amd64 commit -> rollback of a build that cannot read the repo", time.time() - committed)
    assert site.deployment_image() == first
    assert report.agent_image == first
    site.wait("the blind pod gone", lambda: len(site.agent_pods()) == 1, 120)
    site.upgrade(images("build-4", with_env("FLOTILLA_TEST_BUILD=4")), UPGRADE_TIMEOUT)


@full_only
def test_sigkill_of_the_agent_in_its_own_upgrade_converges_to_one_healthy_agent(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    first = real_node_image("amd64")
    site = site_factory(first)
    [old_pod] = site.agent_pods()
    good = images("build-5", with_env("FLOTILLA_TEST_BUILD=5"))
    site.commit_agent(good, "agent: build 5")
    site.wait("the upgrade started", lambda: site.deployment_image() == good, 60)
    container = old_pod["status"]["containerStatuses"][0]["containerID"]
    os.kill(site.node.task_pid(container), signal.SIGKILL)  # the old agent, mid-upgrade

    site.wait_upgraded(good, UPGRADE_TIMEOUT)
    record = site.record()
    assert record is not None
    assert record["result"] == "succeeded", record
    site.upgrade(images("build-6", with_env("FLOTILLA_TEST_BUILD=6")), UPGRADE_TIMEOUT)


@full_only
def test_a_self_upgrade_left_pending_by_a_killed_agent_is_finished_forward(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    """The agent killed while its helm wrote its own release: the release is ``pending-upgrade``
    with the new Deployment live, and the in-flight record in the old pod's volume names a helm that
    is gone (both put back exactly as helm and the agent had them: a kill cannot be timed within
    helm's second).  The old agent waits for the new pod, then finishes the upgrade: no rollback."""
    first = real_node_image("amd64")
    site = site_factory(first)
    [old_pod] = site.agent_pods()
    good = images("build-7", with_env("FLOTILLA_TEST_BUILD=7"))
    site.commit_agent(good, "agent: build 7")
    site.wait("the upgrade written", lambda: site.deployment_image() == good, 60)
    revision = site.release_revision(site.namespace, "flotilla-agent")
    leave_pending(site.cluster, site.namespace, revision)
    record = site.node.empty_dir(old_pod["metadata"]["uid"], "state") / "inflight"
    record.mkdir(exist_ok=True)
    path = record / f"{site.namespace}.flotilla-agent.json"
    host = socket.gethostname()  # a hostNetwork pod's hostname is the node's
    path.write_text(
        json.dumps({"operation": "upgrade", "host": host, "helm_pid": 2**22 + 1, "started": time.time()})
    )
    for made in (record, path):
        os.chown(made, 10001, 10001)
    container = old_pod["status"]["containerStatuses"][0]["containerID"]
    os.kill(site.node.task_pid(container), signal.SIGKILL)

    # if the old pod is replaced before it finishes the upgrade, the new agent does, once the
    # pending-release rules let it: the revision's helm timeout + kill-after + clock skew (150 s)
    report = site.wait_upgraded(good, UPGRADE_TIMEOUT + 150)
    record_now = site.record()
    assert record_now is not None
    assert record_now["result"] == "succeeded", record_now
    assert f"completing the upgrade to revision {revision}" in record_now["reason"]
    assert report.self_upgrade_result.startswith(f"succeeded: agent {good} is Ready")
    assert site.release_revision(site.namespace, "flotilla-agent") == revision + 1
    assert site.deployment_image() == good
    site.upgrade(images("build-8", with_env("FLOTILLA_TEST_BUILD=8")), UPGRADE_TIMEOUT)


@full_only
def test_arm64_agent_under_emulation_upgrades_itself_to_a_good_build(
    site_factory: Callable[..., Site], real_node_image: Callable[[str], str], images: Callable[..., str]
) -> None:
    first = real_node_image("arm64")
    site = site_factory(first, timeout=900, deadline=600)  # Python under QEMU starts slowly
    good = images("build-2", with_env("FLOTILLA_TEST_BUILD=2"), arch="arm64")
    report, seconds = site.upgrade(good, 900)
    report_time("arm64 commit -> new agent Ready and reporting", seconds)
    assert report.agent_arch == "aarch64"
