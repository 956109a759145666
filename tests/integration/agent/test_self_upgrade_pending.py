"""A killed agent's pending self-upgrade is finished, not undone, when the new agent works: the agent
upgrades its own release, then is SIGKILLed as helm writes it -- the release is left
``pending-upgrade`` with the new Deployment already live, and the agent's in-flight record names a
helm that is gone.  Once the new Deployment has rolled out, the restarted agent records the pending
revision as deployed (``helm rollback`` to that very revision: no object changes, no pod
restarts) instead of rolling back to the old build; the next commit is an ordinary upgrade.
(Waiting while it rolls out, and undoing it past the deadline, are the pure rules'
tests/unit/agent_chart/test_selfpending_rules.py; the real-node SIGKILL test runs them live.
Helm keeps revision 3 in its history as ``pending-upgrade``: a rollback supersedes only the
deployed revision.  Only the latest revision is helm's lock, so nothing is blocked by it.)

The crash is made exactly, not by racing a kill against helm: the deployed revision's Helm record
is put back to the ``pending-upgrade`` it had while helm ran (status label and ``info.status``)."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

import pytest

from agent import inflight, state
from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get
from tests.integration.agent.test_bootstrap import (
    _revision,
    agent_image,
    bootstrap,
    set_agent_image,
    upgrade_record,
)

pytestmark = pytest.mark.cluster


def release_secret_name(revision: int) -> str:
    return f"sh.helm.release.v1.flotilla-agent.v{revision}"


def leave_pending(cluster: Any, namespace: str, revision: int) -> None:
    """Revision ``revision`` back to what helm had written before it was killed: pending-upgrade."""
    path = f"/api/v1/namespaces/{namespace}/secrets/{release_secret_name(revision)}"
    secret = cluster.api(path)
    release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
    release["info"]["status"] = "pending-upgrade"
    encoded = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    secret["data"]["release"] = base64.b64encode(encoded).decode()
    secret["metadata"]["labels"]["status"] = "pending-upgrade"
    cluster.api(path, method="PUT", body=secret)


def statuses(cluster: Any, namespace: str) -> list[tuple[int, str]]:
    items = cluster.api(
        f"/api/v1/namespaces/{namespace}/secrets?labelSelector=owner%3Dhelm,name%3Dflotilla-agent"
    )["items"]
    return sorted((int(s["metadata"]["labels"]["version"]), s["metadata"]["labels"]["status"]) for s in items)


def rolled_out(cluster: Any, namespace: str, image: str) -> bool:
    dep = get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/flotilla-agent")
    assert dep is not None
    status = dep.get("status", {})
    return bool(
        dep["spec"]["template"]["spec"]["containers"][0]["image"] == image
        and status.get("observedGeneration") == dep["metadata"]["generation"]
        and status.get("updatedReplicas") == 1
        and status.get("availableReplicas", 0) >= 1
    )


def test_a_pending_self_upgrade_to_a_working_agent_is_finished_forward_after_a_kill(
    cluster, fleet_repo_factory, harness_factory, unique, capsys, monkeypatch
) -> None:
    me, agent_ns, app_ns = f"{unique}-fwd", f"{unique}-agent", f"{unique}-app"
    repo = fleet_repo_factory(
        {
            f"clusters/{me}.yaml": cluster_file(me, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file("web", app_ns, targets=[{"clusterName": me}]),
        }
    )
    old, new = "flotilla-agent:0.1.0-test", "flotilla-agent:0.1.1-test"
    bootstrap(
        capsys, cluster,
        "--cluster", me, "--repo-url", repo.url, "--namespace", agent_ns, "--state-storage", "emptyDir",
        "--image", old, "--image-pull-policy", "Never", "--write-bundle", str(repo.clone.path),
    )  # fmt: skip
    repo.clone.commit_and_push("manage the agent from Git")
    monkeypatch.setenv("FLOTILLA_IMAGE", old)
    monkeypatch.setenv("FLOTILLA_SELF_UPGRADE_DEADLINE", "120")
    agent = harness_factory(cluster, me, repo.url)
    assert by_bundle(agent.run_pass()[0])["web"].state == "Ready"
    web = _revision(cluster, app_ns, "web")

    set_agent_image(repo, new)
    agent.run_pass()  # helm wrote revision 3 and the new Deployment ...
    assert statuses(cluster, agent_ns)[-1] == (3, "deployed")
    leave_pending(cluster, agent_ns, 3)  # ... and was killed before it could mark it deployed
    state.write_json_atomic(
        inflight._path(agent.state_dir, agent_ns, "flotilla-agent"),
        {"operation": "upgrade", "host": inflight.host(), "helm_pid": 2**22 + 1, "started": time.time()},
    )
    agent.restart()
    generation = get(cluster, f"/apis/apps/v1/namespaces/{agent_ns}/deployments/flotilla-agent")
    assert generation is not None

    deadline = time.monotonic() + 60
    while not rolled_out(cluster, agent_ns, new):  # kwok makes the new pod Ready within seconds
        assert time.monotonic() < deadline, "the new agent's Deployment never rolled out"
        time.sleep(0.5)

    outcome, status = agent.run_pass()
    own = by_bundle(outcome)["flotilla-system"]
    assert own.state in ("Ready", "InProgress"), own
    assert "recovered from pending-upgrade" in own.message
    # revision 4 is revision 3's manifest, deployed (helm leaves 3 in its history as it was)
    assert statuses(cluster, agent_ns)[-1] == (4, "deployed")
    assert agent_image(cluster, agent_ns) == new, "rolled back to the old build"
    after = get(cluster, f"/apis/apps/v1/namespaces/{agent_ns}/deployments/flotilla-agent")
    assert after is not None
    assert after["metadata"]["generation"] == generation["metadata"]["generation"], "the pods were restarted"
    record = upgrade_record(cluster, agent_ns)
    assert (record["from_image"], record["to_image"], record["result"]) == (old, new, "succeeded")
    assert "completing the upgrade to revision 3" in record["reason"]
    assert status.self_upgrade_result.startswith("succeeded: agent flotilla-agent:0.1.1-test is Ready")
    assert _revision(cluster, app_ns, "web") == web

    # the next ordinary commit: the new agent upgrades to a newer build as usual
    agent.restart()
    monkeypatch.setenv("FLOTILLA_IMAGE", new)
    newer = "flotilla-agent:0.1.2-test"
    set_agent_image(repo, newer)
    outcome, _ = agent.run_pass()
    assert agent_image(cluster, agent_ns) == newer
    assert statuses(cluster, agent_ns)[-1] == (5, "deployed")
    assert upgrade_record(cluster, agent_ns)["result"] == "in-progress"
