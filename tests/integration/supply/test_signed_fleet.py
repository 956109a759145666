"""The agent with signature verification on, against a real cluster, helm, Git server and hub: an
unsigned commit applies nothing and prunes nothing, the last verified commit keeps running, and
the refusal (commit, signer, reason) is on the agent's table and on the hub; the next good commit
is applied."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.signatures import SignaturePolicy
from tests.fixtures.signing import signed_commit, ssh_key, trusted_keys
from tests.integration.agent.harness import bundle_file, by_bundle, cluster_file, flotilla_releases
from tests.integration.hub.hubserver import InProcessHub, create_token, create_viewer

pytestmark = pytest.mark.cluster


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[InProcessHub]:
    server = InProcessHub(tmp_path / "hub").start()
    yield server
    server.stop()


def test_an_unsigned_commit_changes_nothing_is_reported_and_a_signed_one_after_it_applies(
    cluster, fleet_repo_factory, harness_factory, unique, hub_server, tmp_path
):
    alice = ssh_key(tmp_path / "keys", "alice@example.com")
    mallory = ssh_key(tmp_path / "keys", "mallory@example.com")
    signers = trusted_keys(tmp_path / "allowed_signers", alice)
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file("web", unique, targets=[{"clusterName": unique}]),
            "bundles/api/bundle.yaml": bundle_file("api", unique, targets=[{"clusterName": unique}]),
        }
    )
    verified = signed_commit(repo.clone, "signed: web and api", {}, alice)
    viewer = create_viewer(hub_server.data_dir)
    agent = harness_factory(
        cluster,
        unique,
        repo.url,
        signatures=SignaturePolicy("ssh", signers),
        hub_url=hub_server.url,
        hub_token=create_token(hub_server.data_dir, unique),
    )
    outcome, report = agent.run_pass()
    assert outcome.ok, outcome
    assert report.source.signature == "verified"
    assert report.source.signature_signer is not None
    assert "alice@example.com" in report.source.signature_signer
    revisions = {b.bundle: b.helm_revision for b in report.bundles}

    # A commit that drops "api" and changes "web", signed by a key nobody trusts.
    repo.clone.remove("bundles/api/bundle.yaml")
    forged = signed_commit(
        repo.clone,
        "forged",
        {"bundles/web/bundle.yaml": bundle_file("web", unique, targets=[{"clusterName": unique}],
                                                values={"replicas": 3})},
        mallory,
    )  # fmt: skip
    outcome, report = agent.run_pass()

    assert outcome.pruned == ()  # nothing pruned
    assert flotilla_releases(cluster, unique) == {(unique, "web"), (unique, "api")}
    assert {b.bundle: b.helm_revision for b in report.bundles} == revisions  # nothing applied
    assert {b.bundle: b.applied_commit for b in report.bundles} == {"web": verified, "api": verified}
    assert all(release.state == "Ready" for release in by_bundle(outcome).values())
    assert report.source.desired_commit == verified  # the last verified commit keeps running
    assert report.source.signature == "refused"
    assert report.source.signature_commit == f"commit {forged[:12]}"
    assert report.source.signature_signer is not None
    assert mallory.fingerprint in report.source.signature_signer
    assert report.source.signature_reason == "signed by a key that is not trusted"
    assert agent.agent is not None
    assert agent.agent.reporter is not None
    agent.agent.reporter.flush(timeout=10)

    # On the hub: the cluster's error and its page carry the commit, the key and the reason.
    with httpx.Client(base_url=hub_server.url, headers={"Authorization": f"Bearer {viewer}"}) as client:
        api = client.get(f"/api/v1/clusters/{unique}").json()
        page = client.get(f"/clusters/{unique}").text
    assert api["report"]["source"]["signature"] == "refused"
    assert api["report"]["source"]["signature_reason"] == "signed by a key that is not trusted"
    assert forged[:12] in api["source_error"]
    assert "not trusted" in api["source_error"]
    assert f"commit {forged[:12]}" in page
    assert "refused" in page
    assert mallory.fingerprint in page

    # On the agent's table (``flotilla-agent status``, from the state directory).
    table = subprocess.run(
        [str(Path(sys.executable).parent / "flotilla-agent"), "status", "--state-dir", str(agent.state_dir)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert f"signature: commit {forged[:12]} refused, signer unknown (key {mallory.fingerprint})" in table
    assert "not trusted" in table

    # The next good commit is applied: web upgraded, api pruned.
    good = signed_commit(repo.clone, "signed again", {}, alice)
    outcome, report = agent.run_pass()
    assert outcome.ok, outcome
    assert outcome.pruned == (f"{unique}/api",)
    assert report.source.signature == "verified"
    assert report.source.desired_commit == good
    assert by_bundle(outcome)["web"].helm_revision == (revisions["web"] or 0) + 1
