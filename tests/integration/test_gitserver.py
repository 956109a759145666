"""The Git server fixture is a real smart-HTTP Git host: clone, push and ls-remote work, auth is enforced."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.gitserver import GitServer, WorkingClone, git


def _ls_remote(url: str) -> dict[str, str]:
    refs = {}
    for line in git("ls-remote", url).splitlines():
        sha, ref = line.split("\t")
        refs[ref] = sha
    return refs


def _seed(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    (seed / "clusters").mkdir(parents=True)
    (seed / "clusters" / "edge-1.yaml").write_text("name: edge-1\n")
    return seed


def test_an_open_server_serves_clone_push_and_ls_remote(
    git_server: GitServer, working_clone: Callable[[str], WorkingClone], tmp_path: Path
) -> None:
    url = git_server.create_repo("fleet", from_dir=_seed(tmp_path))
    clone = working_clone(url)
    assert (clone.path / "clusters" / "edge-1.yaml").read_text() == "name: edge-1\n"

    pushed = clone.commit_and_push("add edge-2", {"clusters/edge-2.yaml": "name: edge-2\n"})

    assert _ls_remote(url)["refs/heads/main"] == pushed
    assert git_server.head("fleet") == pushed
    assert any("git-receive-pack" in request for request in git_server.requests)


def test_a_server_with_auth_accepts_the_right_password_for_clone_push_and_ls_remote(
    git_server_factory: Callable[..., GitServer], working_clone: Callable[[str], WorkingClone], tmp_path: Path
) -> None:
    server = git_server_factory(username="fleet", password="s3cret")
    server.create_repo("fleet", from_dir=_seed(tmp_path))
    url = server.repo_url("fleet", with_credentials=True)
    clone = working_clone(url)

    pushed = clone.commit_and_push("change", {"README.md": "hello\n"})

    assert _ls_remote(url)["refs/heads/main"] == pushed


@pytest.mark.parametrize(
    "url_of",
    [
        pytest.param(lambda s: s.repo_url("fleet"), id="no credentials"),
        pytest.param(
            lambda s: s.repo_url("fleet").replace("http://", "http://fleet:wrong@"), id="wrong password"
        ),
    ],
)
def test_a_server_with_auth_refuses_requests_without_the_right_password(
    git_server_factory: Callable[..., GitServer], tmp_path: Path, url_of: Callable[[GitServer], str]
) -> None:
    server = git_server_factory(username="fleet", password="s3cret")
    server.create_repo("fleet", from_dir=_seed(tmp_path))

    with pytest.raises(RuntimeError, match=r"Authentication failed|could not read Username|401"):
        git("ls-remote", url_of(server))


def test_a_large_push_streams_through_the_backend(
    git_server: GitServer, working_clone: Callable[[str], WorkingClone], tmp_path: Path
) -> None:
    """More than git's 1 MiB post buffer: the client switches to a chunked request body."""
    url = git_server.create_repo("fleet", from_dir=_seed(tmp_path))
    clone = working_clone(url)
    (clone.path / "big.bin").write_bytes(os.urandom(3_000_000))

    pushed = clone.commit_and_push("big file")

    assert _ls_remote(url)["refs/heads/main"] == pushed
    copy = working_clone(url)
    assert (copy.path / "big.bin").stat().st_size == 3_000_000


def test_a_stopped_server_refuses_connections_and_comes_back_on_the_same_port(
    git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.create_repo("fleet", from_dir=_seed(tmp_path))
    port = git_server.port
    git_server.stop()

    with pytest.raises(RuntimeError, match=r"Connection refused|Failed to connect"):
        git("ls-remote", url)

    git_server.start()
    assert git_server.port == port
    assert "refs/heads/main" in _ls_remote(url)
