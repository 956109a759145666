"""Signed commits and tags through agent.source, with real keys (ssh-keygen, gpg) and a real Git
server on loopback: what is trusted is checked out, what is not is fetched, refused and reported,
and the last verified checkout keeps being served."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.signatures import SignaturePolicy
from agent.source import Source, SourceSpec
from tests.fixtures.gitserver import GitServer, WorkingClone, git
from tests.fixtures.signing import (
    SigningKey,
    gpg_key,
    signed_commit,
    signed_tag,
    ssh_key,
    stop_gpg_agent,
    trusted_keys,
)

CLUSTER = "clusters/edge-1.yaml"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, SigningKey]:
    return {
        "alice": ssh_key(tmp_path / "keys", "alice@example.com"),
        "bob": ssh_key(tmp_path / "keys", "bob@example.com"),
        "mallory": ssh_key(tmp_path / "keys", "mallory@example.com"),
    }


@pytest.fixture
def gpg_keys(tmp_path: Path) -> Iterator[dict[str, SigningKey]]:
    made = {
        "carol": gpg_key(tmp_path / "keys", "Carol Release", "carol@example.com"),
        "eve": gpg_key(tmp_path / "keys", "Eve Intruder", "eve@example.com"),
    }
    yield made
    for key in made.values():
        stop_gpg_agent(key)


@pytest.fixture
def repo(git_server: GitServer, tmp_path: Path, working_clone: Callable[[str], WorkingClone]) -> WorkingClone:
    seed = tmp_path / "seed"
    (seed / "clusters").mkdir(parents=True)
    (seed / CLUSTER).write_text("name: edge-1\n")
    return working_clone(git_server.create_repo("fleet", from_dir=seed))


def make_source(server: GitServer, state: Path, mode: str, keys_file: Path, **pin: str) -> Source:
    spec = SourceSpec(url=server.repo_url("fleet"), **(pin or {"branch": "main"}))
    return Source(spec, state, signatures=SignaturePolicy(mode, keys_file))  # type: ignore[arg-type]


def head_of(source: Source) -> str:
    return git("rev-parse", "HEAD", cwd=source.checkout).strip()


# ------------------------------------------------------------------------------------------ SSH


def test_ssh_signed_commits_apply_unsigned_and_unknown_are_refused_and_the_last_verified_one_stays(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    good = signed_commit(repo, "signed", {CLUSTER: "name: edge-1\nv: 1\n"}, keys["alice"])
    source = make_source(git_server, tmp_path / "state", "ssh", trusted)

    first = source.sync()
    assert first.error is None
    assert first.commit == good
    assert first.may_prune
    assert first.signature is not None
    assert first.signature.accepted
    assert first.signature.signer == "alice@example.com"
    assert first.signature.key == keys["alice"].fingerprint

    unsigned = signed_commit(repo, "unsigned", {CLUSTER: "name: edge-1\nv: 2\n"}, None)
    refused = source.sync()
    assert refused.commit == good  # the last verified commit keeps being served
    assert head_of(source) == good
    assert "v: 1" in (source.checkout / CLUSTER).read_text()
    assert not refused.may_prune  # a refused commit prunes nothing
    assert refused.signature is not None
    assert not refused.signature.accepted
    assert refused.signature.commit == unsigned
    assert refused.signature.reason == "not signed"
    assert refused.error is not None
    assert unsigned[:12] in refused.error
    assert "not signed" in refused.error

    checks = source.verifications
    again = source.sync()  # the ref did not move: no fetch, no second verification
    assert again.error == refused.error
    assert source.verifications == checks
    assert not again.fetched

    forged = signed_commit(repo, "mallory", {CLUSTER: "name: edge-1\nv: 3\n"}, keys["mallory"])
    unknown = source.sync()
    assert unknown.commit == good
    assert unknown.signature is not None
    assert unknown.signature.commit == forged
    assert "not trusted" in unknown.signature.reason
    assert unknown.signature.key == keys["mallory"].fingerprint  # the untrusted key is named
    assert unknown.error is not None
    assert keys["mallory"].fingerprint in unknown.error

    fixed = signed_commit(repo, "signed again", {CLUSTER: "name: edge-1\nv: 4\n"}, keys["alice"])
    recovered = source.sync()
    assert recovered.error is None
    assert recovered.commit == fixed
    assert recovered.may_prune
    assert head_of(source) == fixed
    assert "v: 4" in (source.checkout / CLUSTER).read_text()


def test_key_rotation_two_trusted_keys_then_the_old_one_removed(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    signed_commit(repo, "by alice", {CLUSTER: "name: edge-1\nv: 1\n"}, keys["alice"])
    source = make_source(git_server, tmp_path / "state", "ssh", trusted)
    assert source.sync().error is None

    trusted_keys(trusted, keys["alice"], keys["bob"])  # rotation: both keys trusted for a while
    by_bob = signed_commit(repo, "by bob", {CLUSTER: "name: edge-1\nv: 2\n"}, keys["bob"])
    rotated = source.sync()
    assert rotated.error is None
    assert rotated.commit == by_bob
    assert rotated.signature is not None
    assert rotated.signature.signer == "bob@example.com"

    trusted_keys(trusted, keys["bob"])  # alice's key retired: bob's commit still verifies
    assert source.sync().error is None
    by_alice = signed_commit(repo, "alice again", {CLUSTER: "name: edge-1\nv: 3\n"}, keys["alice"])
    retired = source.sync()
    assert retired.commit == by_bob
    assert retired.signature is not None
    assert retired.signature.commit == by_alice
    assert not retired.signature.accepted


def test_a_refused_commit_is_checked_again_when_the_trusted_keys_change(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    signed_commit(repo, "by alice", {}, keys["alice"])
    source = make_source(git_server, tmp_path / "state", "ssh", trusted)
    source.sync()
    by_bob = signed_commit(repo, "by bob", {}, keys["bob"])
    assert source.sync().error is not None

    trusted_keys(trusted, keys["alice"], keys["bob"])
    accepted = source.sync()
    assert accepted.error is None
    assert accepted.commit == by_bob


def test_the_first_commit_refused_leaves_no_checkout_to_apply(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    signed_commit(repo, "unsigned", {}, None)
    source = make_source(git_server, tmp_path / "state", "ssh", trusted)

    revision = source.sync()
    assert revision.path is None
    assert revision.commit is None
    assert not revision.may_prune
    assert revision.error is not None
    assert "not signed" in revision.error

    source = make_source(git_server, tmp_path / "state", "ssh", trusted)  # a restart
    assert source.sync().path is None
    good = signed_commit(repo, "signed", {}, keys["alice"])
    assert source.sync().commit == good


def test_turning_verification_on_checks_the_commit_already_on_disk(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    signed_commit(repo, "unsigned", {}, None)
    plain = Source(SourceSpec(url=git_server.repo_url("fleet"), branch="main"), tmp_path / "state")
    assert plain.sync().error is None

    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    verifying = make_source(git_server, tmp_path / "state", "ssh", trusted)
    revision = verifying.sync()
    assert revision.path is None
    assert revision.error is not None
    assert "not signed" in revision.error


def test_an_openpgp_signature_never_passes_an_ssh_policy(
    git_server: GitServer,
    repo: WorkingClone,
    keys: dict[str, SigningKey],
    gpg_keys: dict[str, SigningKey],
    tmp_path: Path,
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    signed_commit(repo, "gpg-signed", {}, gpg_keys["carol"])
    revision = make_source(git_server, tmp_path / "state", "ssh", trusted).sync()
    assert revision.path is None
    assert revision.signature is not None
    assert not revision.signature.accepted


# ------------------------------------------------------------------------------------------ GPG


def test_gpg_signed_commits_from_the_keyring_apply_others_are_refused(
    git_server: GitServer, repo: WorkingClone, gpg_keys: dict[str, SigningKey], keys: dict[str, SigningKey],
    tmp_path: Path,
) -> None:  # fmt: skip
    keyring = trusted_keys(tmp_path / "trusted.asc", gpg_keys["carol"])
    good = signed_commit(repo, "by carol", {CLUSTER: "name: edge-1\nv: 1\n"}, gpg_keys["carol"])
    source = make_source(git_server, tmp_path / "state", "gpg", keyring)

    accepted = source.sync()
    assert accepted.error is None
    assert accepted.commit == good
    assert accepted.signature is not None
    assert accepted.signature.signer == "Carol Release <carol@example.com>"
    assert accepted.signature.key == gpg_keys["carol"].fingerprint

    by_eve = signed_commit(repo, "by eve", {CLUSTER: "name: edge-1\nv: 2\n"}, gpg_keys["eve"])
    refused = source.sync()
    assert refused.commit == good
    assert refused.signature is not None
    assert refused.signature.commit == by_eve
    assert "not trusted" in refused.signature.reason

    by_ssh = signed_commit(repo, "ssh-signed", {}, keys["alice"])
    wrong_format = source.sync()
    assert wrong_format.commit == good
    assert wrong_format.signature is not None
    assert wrong_format.signature.commit == by_ssh
    assert not wrong_format.signature.accepted

    unsigned = signed_commit(repo, "unsigned", {}, None)
    assert source.sync().signature == source.sync().signature  # stable, and not checked twice
    assert source.sync().signature.commit == unsigned  # type: ignore[union-attr]

    again = signed_commit(repo, "carol again", {CLUSTER: "name: edge-1\nv: 5\n"}, gpg_keys["carol"])
    assert source.sync().commit == again
    assert head_of(source) == again


# ------------------------------------------------------------------------------------- tag pins


def test_a_tag_pin_verifies_the_tag_not_just_the_commit(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    first = signed_commit(repo, "release 1", {CLUSTER: "name: edge-1\nv: 1\n"}, keys["alice"])
    signed_tag(repo, "stable", keys["alice"])
    source = make_source(git_server, tmp_path / "state", "ssh", trusted, tag="stable")

    revision = source.sync()
    assert revision.error is None
    assert revision.commit == first
    assert revision.signature is not None
    assert revision.signature.tag == "stable"

    signed_commit(repo, "release 2 (signed commit)", {CLUSTER: "name: edge-1\nv: 2\n"}, keys["alice"])
    signed_tag(repo, "stable", None)  # annotated, unsigned: refused though the commit is signed
    unsigned_tag = source.sync()
    assert unsigned_tag.commit == first
    assert unsigned_tag.error is not None
    assert "tag stable" in unsigned_tag.error
    assert "not signed" in unsigned_tag.error

    signed_commit(repo, "release 3", {}, keys["alice"])
    signed_tag(repo, "stable", None, annotated=False)
    lightweight = source.sync()
    assert lightweight.commit == first
    assert lightweight.signature is not None
    assert "lightweight" in lightweight.signature.reason

    third = repo.head()
    signed_tag(repo, "stable", keys["alice"])
    assert source.sync().commit == third
    assert head_of(source) == third


def test_a_commit_pin_is_verified_once(
    git_server: GitServer, repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    unsigned = signed_commit(repo, "unsigned", {}, None)
    source = make_source(git_server, tmp_path / "state", "ssh", trusted, commit=unsigned)
    assert source.sync().error is not None
    trips, checks = source.round_trips, source.verifications
    assert source.sync().error is not None
    assert (source.round_trips, source.verifications) == (trips, checks)  # no network, no re-check


# ------------------------------------------------------------------------ validate, for CI


def test_validate_checks_the_signature_of_a_local_clone(
    repo: WorkingClone, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    trusted = trusted_keys(tmp_path / "allowed_signers", keys["alice"])
    command = [
        str(Path(sys.executable).parent / "flotilla-agent"), "validate", str(repo.path),
        "--verify-signatures", "ssh", "--trusted-keys", str(trusted),
    ]  # fmt: skip
    repo.write("groups/.keep", "")
    signed_commit(repo, "unsigned", {}, None)
    refused = subprocess.run(command, capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "not signed" in refused.stdout + refused.stderr

    good = signed_commit(repo, "signed", {}, keys["alice"])
    accepted = subprocess.run(command, capture_output=True, text=True, check=False)
    output = accepted.stdout + accepted.stderr
    assert good[:12] in output
    assert "alice@example.com" in output


def test_validate_with_an_unusable_keys_file_says_which_file(repo: WorkingClone, tmp_path: Path) -> None:
    empty = tmp_path / "allowed_signers"
    empty.write_text("# nobody yet\n")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "flotilla-agent"), "validate", str(repo.path),
         "--verify-signatures", "ssh", "--trusted-keys", str(empty)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert str(empty) in result.stderr
    assert "no allowed signers" in result.stderr


def test_a_commit_signed_by_a_revoked_gpg_key_is_refused(
    git_server: GitServer, repo: WorkingClone, gpg_keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    carol = gpg_keys["carol"]
    good = signed_commit(repo, "by carol", {}, carol)
    keyring = trusted_keys(tmp_path / "trusted.asc", carol)
    source = make_source(git_server, tmp_path / "state", "gpg", keyring)
    assert source.sync().commit == good

    # Carol's key is revoked (her own revocation certificate); the keyring is re-published with it.
    certificate = (carol.private / "openpgp-revocs.d" / f"{carol.fingerprint}.rev").read_text()
    env = {"GNUPGHOME": str(carol.private)}
    subprocess.run(["gpg", "--batch", "--import"], input=certificate.replace(":-----BEGIN", "-----BEGIN"),
                   text=True, env=env, check=True, capture_output=True)  # fmt: skip
    keyring.write_text(
        subprocess.run(
            ["gpg", "--batch", "--armor", "--export", carol.fingerprint],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    revision = source.sync()  # the keys changed: the running commit is checked again
    assert revision.path is None
    assert revision.signature is not None
    assert revision.signature.reason == "signed by a revoked key"
