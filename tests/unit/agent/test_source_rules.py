"""The pure parts of agent.source and agent.gitprocess: pin validation, URL redaction, secret
scrubbing, git error wording."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.gitprocess import Outcome, scrub
from agent.redaction import redact_url
from agent.source import Credentials, Source, SourceError, SourceSpec

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        pytest.param(
            "https://user:pass@git.example/fleet.git", "https://git.example/fleet.git", id="user and password"
        ),
        pytest.param(
            "https://token@git.example/fleet.git", "https://git.example/fleet.git", id="a bare token"
        ),
        pytest.param("http://127.0.0.1:8080/fleet.git", "http://127.0.0.1:8080/fleet.git", id="no user info"),
        pytest.param(
            "git@git.example:org/fleet.git", "git@git.example:org/fleet.git", id="an scp-like SSH address"
        ),
        pytest.param(
            "fatal: unable to access 'https://u:p@h/x.git/': 403",
            "fatal: unable to access 'https://h/x.git/': 403",
            id="a URL inside git's stderr",
        ),
    ],
)
def test_redact_url_strips_user_info_from_urls(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_scrub_removes_every_secret_and_url_credentials() -> None:
    text = "header Authorization: Basic c2VjcmV0 for https://a:b@h/x with s3cr3t"
    assert scrub(text, ["s3cr3t", "c2VjcmV0"]) == "header Authorization: Basic *** for https://h/x with ***"


def test_credentials_never_show_the_password_in_their_repr() -> None:
    credentials = Credentials(username="agent", password="hunter2")
    assert "hunter2" not in repr(credentials)
    assert credentials.secrets[0] == "hunter2"
    assert credentials.secrets[1] == "YWdlbnQ6aHVudGVyMg=="  # the basic-auth header value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"url": ""}, "the repo URL is empty", id="an empty URL"),
        pytest.param(
            {"url": "u", "branch": "main", "tag": "v1"},
            "pin the repo by branch, tag or commit, not several",
            id="a branch and a tag",
        ),
        pytest.param(
            {"url": "u", "commit": SHA, "tag": "v1"},
            "pin the repo by branch, tag or commit, not several",
            id="a commit and a tag",
        ),
        pytest.param(
            {"url": "u", "commit": "abc123"},
            "commit pin 'abc123' is not a full 40-character commit id",
            id="an abbreviated commit",
        ),
        pytest.param(
            {"url": "u", "path": "../etc"},
            "repo path '../etc' must be relative and stay inside the repo",
            id="a path",
        ),
    ],
)
def test_a_bad_source_spec_is_refused_with_a_clear_message(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(SourceError) as raised:
        SourceSpec(**kwargs)  # type: ignore[arg-type]
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("spec", "pin"),
    [
        pytest.param(SourceSpec(url="u"), "branch main", id="the default branch is main"),
        pytest.param(SourceSpec(url="u", branch="prod"), "branch prod", id="a branch"),
        pytest.param(SourceSpec(url="u", tag="v1.2"), "tag v1.2", id="a tag"),
        pytest.param(SourceSpec(url="u", commit=SHA, branch="main"), "commit 0123456789ab", id="a commit"),
    ],
)
def test_the_pin_is_described_for_messages(spec: SourceSpec, pin: str) -> None:
    assert spec.pin == pin


def test_credentials_in_the_url_move_out_of_it(tmp_path: Path) -> None:
    source = Source(SourceSpec(url="https://agent:p%40ss@git.example:8443/fleet.git"), tmp_path)
    assert source.url == "https://git.example:8443/fleet.git"
    assert (source.credentials.username, source.credentials.password) == ("agent", "p@ss")


def test_credentials_reach_git_only_through_its_environment(tmp_path: Path) -> None:
    source = Source(SourceSpec(url="https://h/x.git", credentials=Credentials("agent", "hunter2")), tmp_path)
    env = source.git.env
    headers = [env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))]
    assert "Authorization: Basic YWdlbnQ6aHVudGVyMg==" in headers
    assert env["GIT_TERMINAL_PROMPT"] == "0"


URL = "https://git.example/fleet.git"


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        pytest.param(
            "fatal: unable to access 'https://git.example/fleet.git/': "
            "Failed to connect to git.example port 443 after 0 ms: Couldn't connect to server",
            f"cannot reach {URL}: connection refused",
            id="curl cannot connect",
        ),
        pytest.param(
            "fatal: unable to access '...': Could not resolve host: git.example",
            f"cannot reach {URL}: host not found",
            id="an unknown host",
        ),
        pytest.param(
            "fatal: Authentication failed for 'https://git.example/fleet.git/'",
            f"authentication failed for {URL}",
            id="a wrong password",
        ),
        pytest.param(
            "fatal: could not read Username for 'https://git.example': terminal prompts disabled",
            f"authentication failed for {URL}",
            id="no credentials",
        ),
        pytest.param(
            "fatal: repository 'https://git.example/fleet.git/' not found",
            f"repository not found: {URL}",
            id="a missing repository",
        ),
        pytest.param(
            "fatal: couldn't find remote ref refs/heads/prod",
            f"branch main not found in {URL}",
            id="a missing ref",
        ),
        pytest.param(
            "Host key verification failed.\nfatal: Could not read from remote repository.",
            f"cannot reach {URL}: SSH host key verification failed (check known_hosts)",
            id="an SSH host key mismatch",
        ),
        pytest.param(
            "fatal: unable to access 'https://agent:hunter2@git.example/': "
            "The requested URL returned error: 500",
            f"git failed for {URL}: unable to access 'https://git.example/': "
            "The requested URL returned error: 500",
            id="anything else: git's last line, scrubbed",
        ),
    ],
)
def test_git_failures_are_explained_in_one_line(tmp_path: Path, stderr: str, message: str) -> None:
    source = Source(SourceSpec(url=URL, credentials=Credentials("agent", "hunter2")), tmp_path)
    explained = source.git.explain(Outcome(128, "", stderr))
    assert explained == message
    assert "hunter2" not in explained
