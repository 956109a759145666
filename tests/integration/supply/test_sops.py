"""SOPS-encrypted values with real age keys and the real sops binary: decrypted on the edge with
the site's key, in the plan's merge order; a missing key, a foreign key or a tampered file fails
with a message naming the file; ``plan`` shows ``<encrypted>``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agent.sops import Decryptor, SopsError, reveal
from tests.fixtures.sopskeys import AgeKey, age_key, encrypt
from tests.localcluster import Tools

# Like the cluster tests, these need the Go-built tools (sops, age-keygen): `make unit` skips them.
pytestmark = pytest.mark.cluster

PLAIN = "database:\n  password: hunter2-correct-horse\n  host: db.internal\nreplicas: 2\n"


@pytest.fixture
def site(tools: Tools) -> AgeKey:
    return age_key(tools)


def decryptor(tools: Tools, key: AgeKey | None) -> Decryptor:
    return Decryptor(
        read_key=lambda: key.identity if key else None,
        key_source="Secret flotilla-system/site-age key age.agekey",
        binary=tools.path("sops"),
    )


def test_the_sites_key_decrypts_the_file_into_the_merged_values(
    tools: Tools, site: AgeKey, tmp_path: Path
) -> None:
    encrypt(tools, tmp_path / "secrets.yaml", PLAIN, age_key(tools), site)  # two sites can open it
    cipher = yaml.safe_load((tmp_path / "secrets.yaml").read_text())
    assert "hunter2" not in (tmp_path / "secrets.yaml").read_text()
    # a later layer (a target) set replicas over the file's encrypted one
    merged = {"database": dict(cipher["database"]), "replicas": 5, "region": "eu"}

    values, hidden = reveal(decryptor(tools, site), merged, ["secrets.yaml"], tmp_path)

    assert values == {
        "database": {"password": "hunter2-correct-horse", "host": "db.internal"},
        "replicas": 5,  # the later layer still wins over the encrypted file
        "region": "eu",
    }
    assert "hunter2-correct-horse" in hidden


def test_partial_encryption_keeps_the_clear_keys(tools: Tools, site: AgeKey, tmp_path: Path) -> None:
    text = encrypt(tools, tmp_path / "secrets.yaml", PLAIN, site, regex="^password$")
    cipher = yaml.safe_load(text)
    assert cipher["database"]["host"] == "db.internal"
    values, _ = reveal(decryptor(tools, site), {"database": cipher["database"]}, ["secrets.yaml"], tmp_path)
    assert values["database"] == {"password": "hunter2-correct-horse", "host": "db.internal"}


def test_a_file_for_another_site_fails_naming_the_file_and_the_key(
    tools: Tools, site: AgeKey, tmp_path: Path
) -> None:
    other = age_key(tools)
    encrypt(tools, tmp_path / "secrets.yaml", PLAIN, other)
    with pytest.raises(SopsError) as raised:
        reveal(decryptor(tools, site), {}, ["secrets.yaml"], tmp_path)
    message = str(raised.value)
    assert "secrets.yaml" in message
    assert "not one of the file's recipients" in message
    assert "Secret flotilla-system/site-age" in message
    assert site.identity.strip() not in message


def test_no_key_at_the_site_fails_with_a_message_saying_so(
    tools: Tools, site: AgeKey, tmp_path: Path
) -> None:
    encrypt(tools, tmp_path / "secrets.yaml", PLAIN, site)
    with pytest.raises(SopsError, match="this site has no age key"):
        reveal(decryptor(tools, None), {}, ["secrets.yaml"], tmp_path)
    with pytest.raises(SopsError, match="--sops-key-secret"):
        reveal(None, {}, ["secrets.yaml"], tmp_path)


def test_a_tampered_file_is_refused_by_its_mac(tools: Tools, site: AgeKey, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    encrypt(tools, path, PLAIN, site, regex="^password$")
    path.write_text(path.read_text().replace("host: db.internal", "host: evil.example"))
    with pytest.raises(SopsError, match="MAC mismatch"):
        reveal(decryptor(tools, site), {}, ["secrets.yaml"], tmp_path)


def test_a_site_holding_several_keys_uses_the_one_that_opens_the_file(
    tools: Tools, site: AgeKey, tmp_path: Path
) -> None:
    encrypt(tools, tmp_path / "secrets.yaml", PLAIN, site)
    rotated = AgeKey(identity=age_key(tools).identity + site.identity, recipient=site.recipient)
    values, _ = reveal(decryptor(tools, rotated), {"replicas": 1}, ["secrets.yaml"], tmp_path)
    assert values == {"replicas": 1}


def test_a_forged_sops_file_fails_with_the_file_named(tools: Tools, site: AgeKey, tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text(
        "password: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\n"
        "sops:\n  mac: ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAA,type:str]\n  version: 3.13.3\n"
    )
    with pytest.raises(SopsError, match=r"cannot decrypt secrets\.yaml: "):
        reveal(decryptor(tools, site), {}, ["secrets.yaml"], tmp_path)


def test_plan_shows_encrypted_values_redacted(tools: Tools, site: AgeKey, tmp_path: Path) -> None:
    repo = tmp_path / "fleet"
    (repo / "clusters").mkdir(parents=True)
    (repo / "clusters" / "edge-1.yaml").write_text(
        "apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nname: edge-1\nlabels: {}\n"
    )
    (repo / "bundles" / "db").mkdir(parents=True)
    (repo / "bundles" / "db" / "bundle.yaml").write_text(
        "apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nname: db\nnamespace: db\n"
        "chart: {repo: 'https://charts.example.org', name: db, version: 1.0.0}\n"
        "valuesFiles: [secrets.yaml]\ntargets: [{clusterName: edge-1}]\n"
    )
    text = encrypt(tools, repo / "bundles" / "db" / "secrets.yaml", PLAIN, site)
    ciphertext = yaml.safe_load(text)["database"]["password"]
    agent = str(Path(sys.executable).parent / "flotilla-agent")

    for output in ("table", "json"):
        shown = subprocess.run(
            [agent, "plan", str(repo), "--cluster", "edge-1", "--output", output],
            capture_output=True,
            text=True,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        assert "<encrypted>" in shown.stdout
        assert "hunter2" not in shown.stdout
        assert ciphertext not in shown.stdout
        assert "bundles/db/secrets.yaml" in shown.stdout
        assert "db.internal" not in shown.stdout  # the whole file was encrypted: nothing in clear
    assert subprocess.run([agent, "validate", str(repo)], capture_output=True, check=False).returncode == 0


# ------------------------------------------------------------------------ the agent, on a cluster


def _create_age_secret(cluster, namespace: str, name: str, key: AgeKey) -> None:  # type: ignore[no-untyped-def]
    cluster.api("/api/v1/namespaces", method="POST", body={"metadata": {"name": namespace}})
    cluster.api(
        f"/api/v1/namespaces/{namespace}/secrets",
        method="POST",
        body={"metadata": {"name": name}, "stringData": {"age.agekey": key.identity}},
    )


def _files_under(root: Path) -> str:
    return "".join(path.read_bytes().decode(errors="replace") for path in root.rglob("*") if path.is_file())


def test_the_agent_decrypts_with_the_sites_key_and_the_plaintext_goes_nowhere_but_the_release(
    cluster, tools, fleet_repo_factory, harness_factory, unique, tmp_path
):
    from structlog.testing import capture_logs

    from tests.integration.agent.harness import bundle_file, cluster_file, get

    site = age_key(tools)
    secret_region = f"eu-{unique}-s3cr3t-region"
    agent_ns = f"{unique}-agent"
    _create_age_secret(cluster, agent_ns, "site-age", site)
    work = tmp_path / "enc"
    web_secret = encrypt(tools, work / "web.yaml", f"region: {secret_region}\n", site)
    foreign = encrypt(tools, work / "api.yaml", "region: not-for-this-site\n", age_key(tools))
    repo = fleet_repo_factory(
        {
            f"clusters/{unique}.yaml": cluster_file(unique, {"region": "eu"}),
            "bundles/web/bundle.yaml": bundle_file(
                "web", unique, targets=[{"clusterName": unique}], valuesFiles=["secrets.yaml"]
            ),
            "bundles/web/secrets.yaml": web_secret,
            "bundles/api/bundle.yaml": bundle_file(
                "api", unique, targets=[{"clusterName": unique}], valuesFiles=["secrets.yaml"]
            ),
            "bundles/api/secrets.yaml": foreign,
        }
    )
    agent = harness_factory(
        cluster, unique, repo.url, sops_key_secret=f"{agent_ns}/site-age", sops=tools.path("sops")
    )

    with capture_logs() as logs:
        outcome, report = agent.run_pass()
    states = {b.bundle: b for b in report.bundles}
    assert states["web"].state == "Ready", states["web"].message
    config = get(cluster, f"/api/v1/namespaces/{unique}/configmaps/web-config")
    assert config is not None
    assert config["data"]["region"] == secret_region  # decrypted on the edge, into the release
    assert states["api"].state == "Failed"  # the site lacks that file's key: that bundle only
    assert "bundles/api/secrets.yaml" in states["api"].message
    assert "not one of the file's recipients" in states["api"].message
    assert f"Secret {agent_ns}/site-age" in states["api"].message

    # The plaintext is nowhere but in the release: not in logs, the report or the state directory.
    assert secret_region not in repr(logs)
    assert secret_region not in report.to_json()
    assert secret_region not in repr(outcome)
    assert secret_region not in _files_under(agent.state_dir)
    assert site.identity.split()[-1] not in _files_under(agent.state_dir)

    # A pass that changes nothing decrypts nothing.
    assert agent.agent is not None
    assert agent.agent.decryptor is not None
    before = agent.agent.decryptor.decryptions
    _, again = agent.run_pass()
    assert {b.bundle: b.state for b in again.bundles}["web"] == "Ready"
    assert agent.agent.decryptor.decryptions == before

    # The fleet re-encrypts api's file for this site too: the next commit applies it.
    fixed = encrypt(tools, work / "api2.yaml", "region: now-for-this-site\n", site)
    repo.write({"bundles/api/secrets.yaml": fixed}, "api: add the site's recipient")
    _, healed = agent.run_pass()
    assert {b.bundle: b.state for b in healed.bundles} == {"web": "Ready", "api": "Ready"}
    api_config = get(cluster, f"/api/v1/namespaces/{unique}/configmaps/api-config")
    assert api_config is not None
    assert api_config["data"]["region"] == "now-for-this-site"
