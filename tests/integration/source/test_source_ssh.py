"""agent.source over SSH against a real sshd on loopback: key auth and strict host key checking."""

from __future__ import annotations

from pathlib import Path

from agent.source import Credentials, Source, SourceSpec, ssh_command
from tests.fixtures.gitserver import GitServer, SshGitServer


def _seeded(git_server: GitServer, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "cluster.yaml").write_text("name: edge-1\n")
    git_server.create_repo("fleet", from_dir=seed)


def test_a_key_and_known_hosts_sync_over_ssh(
    git_server: GitServer, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    _seeded(git_server, tmp_path)
    key = ssh_git_server.make_key("agent_key")
    known_hosts = ssh_git_server.known_hosts(tmp_path / "known_hosts")
    spec = SourceSpec(
        url=ssh_git_server.repo_url("fleet"), credentials=Credentials(ssh_key=key, known_hosts=known_hosts)
    )
    source = Source(spec, tmp_path / "state")

    first = source.sync()
    second = source.sync()

    assert first.error is None
    assert first.commit == git_server.head("fleet")
    assert first.path is not None
    assert (first.path / "cluster.yaml").read_text() == "name: edge-1\n"
    assert (second.fetched, second.offline, source.round_trips) == (False, False, 2)


def test_an_unknown_host_key_is_refused(
    git_server: GitServer, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    _seeded(git_server, tmp_path)
    key = ssh_git_server.make_key("agent_key")
    impostor = ssh_git_server.make_key("other_host_key", authorize=False)
    known_hosts = ssh_git_server.known_hosts(tmp_path / "known_hosts", host_key=impostor)
    spec = SourceSpec(
        url=ssh_git_server.repo_url("fleet"), credentials=Credentials(ssh_key=key, known_hosts=known_hosts)
    )

    revision = Source(spec, tmp_path / "state").sync()

    assert revision.path is None
    url = ssh_git_server.repo_url("fleet")
    assert revision.error == f"cannot reach {url}: SSH host key verification failed (check known_hosts)"


def test_a_key_the_server_does_not_know_is_refused(
    git_server: GitServer, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    _seeded(git_server, tmp_path)
    stranger = ssh_git_server.make_key("stranger", authorize=False)
    known_hosts = ssh_git_server.known_hosts(tmp_path / "known_hosts")
    spec = SourceSpec(
        url=ssh_git_server.repo_url("fleet"),
        credentials=Credentials(ssh_key=stranger, known_hosts=known_hosts),
    )

    revision = Source(spec, tmp_path / "state").sync()

    assert (
        revision.error == f"authentication failed for {ssh_git_server.repo_url('fleet')}: permission denied"
    )


def test_the_ssh_command_pins_the_key_and_checks_host_keys_strictly() -> None:
    command = ssh_command(Path("/keys/id ed25519"), Path("/keys/known_hosts"))
    assert command == (
        "ssh -F /dev/null -i '/keys/id ed25519' -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/keys/known_hosts -o ConnectTimeout=30"
    )


def test_a_key_readable_by_others_is_refused_with_advice(
    git_server: GitServer, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    """A Kubernetes Secret volume mounts files 0644 by default, and ssh will not use such a key."""
    _seeded(git_server, tmp_path)
    key = ssh_git_server.make_key("agent_key")
    key.chmod(0o644)
    known_hosts = ssh_git_server.known_hosts(tmp_path / "known_hosts")
    spec = SourceSpec(
        url=ssh_git_server.repo_url("fleet"), credentials=Credentials(ssh_key=key, known_hosts=known_hosts)
    )

    revision = Source(spec, tmp_path / "state").sync()

    url = ssh_git_server.repo_url("fleet")
    assert revision.error == (
        f"cannot use SSH key {key} for {url}: it is readable by other users and ssh refuses it "
        "(make it mode 0600; on a Secret volume set defaultMode: 0400)"
    )


def test_a_missing_key_file_is_named(
    git_server: GitServer, ssh_git_server: SshGitServer, tmp_path: Path
) -> None:
    _seeded(git_server, tmp_path)
    known_hosts = ssh_git_server.known_hosts(tmp_path / "known_hosts")
    key = tmp_path / "no-such-key"
    spec = SourceSpec(
        url=ssh_git_server.repo_url("fleet"), credentials=Credentials(ssh_key=key, known_hosts=known_hosts)
    )

    revision = Source(spec, tmp_path / "state").sync()

    assert (
        revision.error
        == f"cannot use SSH key {key} for {ssh_git_server.repo_url('fleet')}: the file cannot be read"
    )
