"""``flotilla-agent bootstrap`` against the real local control plane with the real helm: --dry-run
changes nothing; a bootstrap installs the agent's chart labelled as the flotilla-system bundle; the
agent's pass before the bundle is merged keeps the agent (it never prunes itself); running bootstrap
again changes nothing; the written bundle validates, and once pushed the agent takes over its own
release (site values from the ConfigMap) without touching the workloads; then a commit that bumps
the agent's image is applied by the agent to its own Deployment, and the workloads stay as they were."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent import cli
from agent.fleet import commands as fleet_commands
from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, get

pytestmark = pytest.mark.cluster


def bootstrap(capsys: pytest.CaptureFixture[str], cluster: Any, *args: str) -> str:
    code = cli.main(
        ["bootstrap", "--kubeconfig", str(cluster.kubeconfig), "--helm", cluster.tools.helm, *args]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def release_secrets(cluster: Any, namespace: str) -> list[dict[str, Any]]:
    items = cluster.api(
        f"/api/v1/namespaces/{namespace}/secrets?labelSelector=owner%3Dhelm,name%3Dflotilla-agent"
    )
    return sorted(items["items"], key=lambda s: int(s["metadata"]["labels"]["version"]))


def deployment(cluster: Any, namespace: str) -> dict[str, Any]:
    found = get(cluster, f"/apis/apps/v1/namespaces/{namespace}/deployments/flotilla-agent")
    assert found is not None
    return found


def env_of(dep: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_bootstrap_then_the_agent_manages_itself_from_git(
    cluster, fleet_repo_factory, harness_factory, unique, capsys, tmp_path: Path
) -> None:
    me, agent_ns, app_ns = f"{unique}-boot", f"{unique}-agent", f"{unique}-app"
    repo = fleet_repo_factory(
        {
            f"clusters/{me}.yaml": cluster_file(me, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file("web", app_ns, targets=[{"clusterName": me}]),
        }
    )
    common = [
        "--cluster", me, "--repo-url", repo.url, "--namespace", agent_ns, "--state-storage", "emptyDir",
        "--image", "flotilla-agent:0.1.0-test", "--image-pull-policy", "Never", "--interval", "30",
    ]  # fmt: skip

    dry = bootstrap(capsys, cluster, *common, "--dry-run")
    for step in range(1, 5):
        assert f"[dry run] [{step}/4]" in dry
    assert "+++ b/bundles/flotilla-system/bundle.yaml" in dry
    assert get(cluster, f"/api/v1/namespaces/{agent_ns}") is None, "--dry-run created the namespace"

    out = bootstrap(capsys, cluster, *common)
    assert f"release {agent_ns}/flotilla-agent installed" in out
    namespace = get(cluster, f"/api/v1/namespaces/{agent_ns}")
    assert namespace is not None
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    first = release_secrets(cluster, agent_ns)
    assert len(first) == 1
    labels = first[0]["metadata"]["labels"]
    assert labels["flotilla.dev/bundle"] == "flotilla-system"
    assert labels["flotilla.dev/cluster"] == me
    assert labels["flotilla.dev/owner"] == "flotilla"
    dep = deployment(cluster, agent_ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "flotilla-agent:0.1.0-test"
    assert env_of(dep)["FLOTILLA_CLUSTER"] == me
    site = get(cluster, f"/api/v1/namespaces/{agent_ns}/configmaps/flotilla-agent-site")
    assert site is not None
    assert yaml.safe_load(site["data"]["values.yaml"])["cluster"] == me

    # The bundle is not in the repo yet: the agent's pass installs the workload and keeps itself.
    agent = harness_factory(cluster, me, repo.url)
    outcome, _ = agent.run_pass()
    assert by_bundle(outcome)["web"].state == "Ready", by_bundle(outcome)["web"].message
    assert outcome.pruned == ()
    assert len(release_secrets(cluster, agent_ns)) == 1

    again = bootstrap(capsys, cluster, *common)
    assert "revision 1 is deployed, managed from Git: unchanged" in again
    assert len(release_secrets(cluster, agent_ns)) == 1

    written = bootstrap(capsys, cluster, *common, "--write-bundle", str(repo.clone.path))
    assert "wrote bundles/flotilla-system/bundle.yaml" in written
    assert fleet_commands.validate(str(repo.clone.path), stdout=_Sink(), stderr=_Sink()) == 0
    assert "unchanged" in bootstrap(capsys, cluster, *common, "--write-bundle", str(repo.clone.path))
    repo.clone.commit_and_push("manage the agent from Git")

    web_revision = _revision(cluster, app_ns, "web")
    outcome, _ = agent.run_pass()
    assert by_bundle(outcome)["flotilla-system"].state == "Ready", by_bundle(outcome)[
        "flotilla-system"
    ].message
    secrets = release_secrets(cluster, agent_ns)
    assert len(secrets) == 2
    assert secrets[-1]["metadata"]["labels"]["flotilla.dev/digest"] != "bootstrap"
    assert env_of(deployment(cluster, agent_ns))["FLOTILLA_CLUSTER"] == me  # from the site ConfigMap
    assert _revision(cluster, app_ns, "web") == web_revision

    # The next ordinary operation: a commit bumps the agent's image; the agent upgrades itself.
    bundle_path = repo.clone.path / "bundles/flotilla-system/bundle.yaml"
    bundle = yaml.safe_load(bundle_path.read_text())
    bundle["values"]["image"] = "flotilla-agent:0.1.1-test"
    repo.write({"bundles/flotilla-system/bundle.yaml": yaml.safe_dump(bundle)}, "agent 0.1.1")
    outcome, _ = agent.run_pass()
    assert by_bundle(outcome)["flotilla-system"].state in ("Ready", "InProgress")
    dep = deployment(cluster, agent_ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "flotilla-agent:0.1.1-test"
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert _revision(cluster, app_ns, "web") == web_revision


def _revision(cluster: Any, namespace: str, release: str) -> int:
    items = cluster.api(
        f"/api/v1/namespaces/{namespace}/secrets?labelSelector=owner%3Dhelm,name%3D{release},status%3Ddeployed"
    )["items"]
    assert len(items) == 1, json.dumps([i["metadata"]["labels"] for i in items])
    return int(items[0]["metadata"]["labels"]["version"])


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def set_agent_image(repo: Any, image: str) -> str:
    bundle_path = repo.clone.path / "bundles/flotilla-system/bundle.yaml"
    bundle = yaml.safe_load(bundle_path.read_text())
    bundle["values"]["image"] = image
    return str(repo.write({"bundles/flotilla-system/bundle.yaml": yaml.safe_dump(bundle)}, f"agent {image}"))


def upgrade_record(cluster: Any, namespace: str) -> dict[str, Any]:
    found = get(cluster, f"/api/v1/namespaces/{namespace}/configmaps/flotilla-agent-upgrade")
    assert found is not None, "no self-upgrade record"
    return dict(json.loads(found["data"]["record.json"]))


def agent_image(cluster: Any, namespace: str) -> str:
    return str(deployment(cluster, namespace)["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_build_that_never_completes_a_pass_is_rolled_back_by_the_old_agent_then_a_good_one_lands(
    cluster, fleet_repo_factory, harness_factory, unique, capsys, monkeypatch
) -> None:
    """The harness agent plays the pod it runs in (FLOTILLA_IMAGE); no hub is configured, as at a site
    whose hub is down.  The broken build is never run at all: it never completes a pass, which is
    what a build that exits at start or cannot read the repo looks like to the old agent."""
    me, agent_ns, app_ns = f"{unique}-self", f"{unique}-agent", f"{unique}-app"
    repo = fleet_repo_factory(
        {
            f"clusters/{me}.yaml": cluster_file(me, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file("web", app_ns, targets=[{"clusterName": me}]),
        }
    )
    good = "flotilla-agent:0.1.0-test"
    common = [
        "--cluster", me, "--repo-url", repo.url, "--namespace", agent_ns, "--state-storage", "emptyDir",
        "--image", good, "--image-pull-policy", "Never", "--write-bundle", str(repo.clone.path),
    ]  # fmt: skip
    bootstrap(capsys, cluster, *common)
    repo.clone.commit_and_push("manage the agent from Git")
    monkeypatch.setenv("FLOTILLA_IMAGE", good)
    monkeypatch.setenv("FLOTILLA_SELF_UPGRADE_DEADLINE", "3")
    old_agent = harness_factory(cluster, me, repo.url)
    outcome, _ = old_agent.run_pass()
    assert by_bundle(outcome)["web"].state == "Ready"
    web_revision = _revision(cluster, app_ns, "web")
    assert _revision(cluster, agent_ns, "flotilla-agent") == 2

    set_agent_image(repo, "flotilla-agent:broken")
    outcome, status = old_agent.run_pass()
    assert agent_image(cluster, agent_ns) == "flotilla-agent:broken"
    record = upgrade_record(cluster, agent_ns)
    assert (record["from_image"], record["to_image"], record["result"]) == (
        good,
        "flotilla-agent:broken",
        "in-progress",
    )
    assert (record["from_revision"], record["to_revision"]) == (2, 3)

    time.sleep(3.5)  # the deadline passes; the new build never reported a completed pass
    outcome, status = old_agent.run_pass()
    record = upgrade_record(cluster, agent_ns)
    assert record["result"] == "rolled-back", record
    assert agent_image(cluster, agent_ns) == good
    assert _revision(cluster, agent_ns, "flotilla-agent") == 4
    assert status.self_upgrade_result.startswith("rolled-back: agent flotilla-agent:broken did not complete")
    assert (status.self_upgrade_from, status.self_upgrade_to, status.agent_image) == (
        good,
        "flotilla-agent:broken",
        good,
    )

    # The next pass does not upgrade to the broken build again: it reports it, and changes nothing.
    outcome, status = old_agent.run_pass()
    own = by_bundle(outcome)["flotilla-system"]
    assert own.state == "Failed"
    assert "did not complete a pass" in own.message
    assert _revision(cluster, agent_ns, "flotilla-agent") == 4
    assert agent_image(cluster, agent_ns) == good
    assert _revision(cluster, app_ns, "web") == web_revision

    # A new commit with a good build: the old agent upgrades, the new one proves itself.
    newer = "flotilla-agent:0.1.2-test"
    set_agent_image(repo, newer)
    old_agent.run_pass()
    assert agent_image(cluster, agent_ns) == newer
    assert upgrade_record(cluster, agent_ns)["result"] == "in-progress"
    old_agent.restart()
    monkeypatch.setenv("FLOTILLA_IMAGE", newer)
    new_agent = harness_factory(cluster, me, repo.url, state_dir=old_agent.state_dir.parent / "new-pod")
    outcome, status = new_agent.run_pass()
    record = upgrade_record(cluster, agent_ns)
    assert record["result"] == "succeeded", record
    assert (record["from_image"], record["to_image"]) == (good, newer)
    assert (status.self_upgrade_to, status.self_upgrade_result) == (
        newer,
        "succeeded: the new agent completed a pass",
    )
    assert agent_image(cluster, agent_ns) == newer
    assert _revision(cluster, app_ns, "web") == web_revision
