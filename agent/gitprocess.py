"""The only module that starts ``git``: one remote's git commands with hermetic settings, the
credentials in the environment only (an ``http.extraHeader`` through ``GIT_CONFIG_*``, or an SSH
key with strict host checking; never on a command line or in ``.git/config``), and git's stderr
scrubbed of every secret and turned into a one-line reason naming the credential-free URL.

:mod:`agent.source` decides what to run; :mod:`agent.source_gate` runs signature checks through it.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from agent.redaction import redact_url


class SourceError(Exception):
    """A fleet repo problem with a message fit for logs and reports (no credentials)."""


@dataclass(frozen=True)
class Credentials:
    """How to authenticate to the Git host.  ``repr`` never shows a secret."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # a password or an access token
    ssh_key: Path | None = None
    known_hosts: Path | None = None

    @classmethod
    def token(cls, token: str, username: str = "x-access-token") -> Credentials:
        """A personal access token sent as basic auth, the way GitHub, GitLab and Gitea accept it."""
        return cls(username=username, password=token)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every string that must never be shown, including the encoded auth header."""
        if not self.password:
            return ()
        return (self.password, basic_token(self.username or "", self.password))


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without URL user info and without any of ``secrets``."""
    text = redact_url(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def split_credentials(url: str, credentials: Credentials) -> tuple[str, Credentials]:
    """Move ``user:password@`` out of an HTTP(S) URL into credentials (explicit ones win)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not (parts.username or parts.password):
        return url, credentials
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if credentials.password or credentials.ssh_key:
        return clean, credentials
    return clean, Credentials(username=unquote(parts.username or ""), password=unquote(parts.password or ""))


def environment(credentials: Credentials) -> dict[str, str]:
    """Hermetic git settings, and the credentials, passed through the environment only."""
    config = [
        ("credential.helper", ""),
        ("protocol.version", "2"),
        ("http.lowSpeedLimit", "1000"),
        ("http.lowSpeedTime", "30"),
        ("gc.auto", "0"),
        ("core.askPass", ""),
    ]
    if credentials.password is not None:
        token = basic_token(credentials.username or "", credentials.password)
        config.append(("http.extraHeader", f"Authorization: Basic {token}"))
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    if credentials.ssh_key is not None:
        env["GIT_SSH_COMMAND"] = ssh_command(credentials.ssh_key, credentials.known_hosts)
    return env


def ssh_command(key: Path, known_hosts: Path | None) -> str:
    """The ``GIT_SSH_COMMAND`` for key auth with strict host checking against ``known_hosts``."""
    parts = [
        "ssh",
        "-F",
        os.devnull,
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts if known_hosts is not None else os.devnull}",
        "-o",
        "ConnectTimeout=30",
    ]
    return shlex.join(parts)


class GitProcess:
    """git for one remote (``url``, credential-free) and one checkout (``workdir``)."""

    def __init__(
        self, url: str, credentials: Credentials, *, pin: str, timeout: float, workdir: Path
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.pin = pin  # what is followed, for messages ("branch main")
        self.timeout = timeout
        self.workdir = workdir
        self.secrets = credentials.secrets
        self.env = environment(credentials)
        self.round_trips = 0  # network git commands run (ls-remote, fetch): the benchmark reads it

    def network(self, args: list[str], cwd: Path | None) -> Outcome:
        """A command that talks to the remote (counted, bounded by the timeout); raises
        :class:`SourceError` with the reason when it fails."""
        self.round_trips += 1
        outcome = self.run(args, cwd=cwd, timeout=self.timeout)
        if outcome.status != 0:
            raise SourceError(self.explain(outcome))
        return outcome

    def local(self, args: list[str]) -> Outcome:
        """A command on the checkout only (no network, no timeout)."""
        return self.run(args, cwd=self.workdir, timeout=None)

    def run(
        self,
        args: list[str],
        *,
        cwd: Path | None,
        timeout: float | None,
        extra_env: Mapping[str, str] | None = None,
    ) -> Outcome:
        from git.cmd import Git  # GitPython runs `git version` on import: only when git is used

        runner = Git(str(cwd) if cwd else None)
        try:
            status, stdout, stderr = runner.execute(
                ["git", *args],
                env={**self.env, **extra_env} if extra_env else self.env,
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=timeout,
                strip_newline_in_stdout=False,
            )
        except OSError as error:  # git itself missing, or the directory vanished
            raise SourceError(f"cannot run git: {error.strerror or error}") from None
        return Outcome(int(status), str(stdout), str(stderr))

    def clean(self, text: str) -> str:
        return scrub(text.strip(), self.secrets)

    def explain(self, outcome: Outcome) -> str:
        """A one-line reason from git's stderr, naming the (credential-free) URL."""
        text = self.clean(outcome.stderr)
        lowered = text.lower()
        url = self.url
        for needle, reason in (
            ("connection refused", "connection refused"),
            ("could not resolve host", "host not found"),
            ("could not resolve hostname", "host not found"),
            ("timed out", "timed out"),
            ("operation too slow", "timed out"),
            ("no route to host", "no route to host"),
            ("network is unreachable", "network unreachable"),
            ("timeout was reached", "timed out"),
            ("couldn't connect to server", "connection refused"),  # curl's wording for ECONNREFUSED
        ):
            if needle in lowered:
                return f"cannot reach {url}: {reason}"
        if re.search(
            r"authentication failed|could not read username|could not read password|\b401\b|\b403\b", lowered
        ):
            return f"authentication failed for {url}"
        key = self.credentials.ssh_key
        if "unprotected private key file" in lowered:
            return (
                f"cannot use SSH key {key} for {url}: it is readable by other users and ssh refuses it "
                "(make it mode 0600; on a Secret volume set defaultMode: 0400)"
            )
        if "identity file" in lowered and "not accessible" in lowered:
            return f"cannot use SSH key {key} for {url}: the file cannot be read"
        if "host key verification failed" in lowered:
            return f"cannot reach {url}: SSH host key verification failed (check known_hosts)"
        if "permission denied" in lowered:
            return f"authentication failed for {url}: permission denied"
        if re.search(r"repository .*not found|\b404\b|does not appear to be a git repository", lowered):
            return f"repository not found: {url}"
        if "couldn't find remote ref" in lowered:
            return f"{self.pin} not found in {url}"
        if outcome.status == -9 or "killed" in lowered:
            return f"cannot reach {url}: no answer within {self.timeout:.0f}s"
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else f"git exited with status {outcome.status}"
        return f"git failed for {url}: {last.removeprefix('fatal: ').removeprefix('error: ')}"
