"""The fleet repo, synced into the agent's state directory.  The only module that runs git.

One call per pass, :meth:`Source.sync`, returns a :class:`SourceRevision`:

- ``git ls-remote`` first (one network round trip); fetch only when the pinned ref moved, as a
  shallow (depth 1), single-ref fetch.  A commit pin already checked out needs no network at all.
- Pins: a branch, a tag, or a commit (fetched by id when the server allows it, otherwise found
  by deepening a fetch of the branch).
- Auth: HTTPS basic auth or a token, sent as an ``http.extraHeader`` through git's
  ``GIT_CONFIG_COUNT`` environment (never on the command line, never in ``.git/config``); SSH with a
  private key and a known_hosts file, strict host key checking.
- The checkout and the last applied commit live in ``<state_dir>/source``.  When the remote cannot
  be reached, ``sync`` returns the cached checkout with ``offline=True`` and the error: the agent
  keeps running its last good state, and :attr:`SourceRevision.may_prune` is False, so nothing is
  ever deleted because the network is down.
- A corrupt cache (missing objects, broken HEAD, a checkout that no longer matches its record) is
  detected on the first sync and whenever a checkout fails, and is cloned again.
- Credentials never appear in logs, errors or returned data: URLs are stripped of user info and
  git's stderr is scrubbed of every secret before it is used.

Failures reach the caller as the ``error`` of the returned revision (the text of a
:class:`SourceError`); ``SourceError`` is raised only for configuration mistakes.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit, urlunsplit

import structlog

from agent.redaction import redact_url
from agent.signatures import SignatureError, SignaturePolicy, Verdict
from agent.source_gate import SignatureGate

log = structlog.get_logger(__name__)

NETWORK_TIMEOUT_SECONDS: Final = 120.0
_GC_EVERY_FETCHES: Final = 25
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


RELEASED_RETRY_SECONDS = 600.0  # a released commit that could not be fetched is tried again after this


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
        return (self.password, _basic_token(self.username or "", self.password))


@dataclass(frozen=True)
class SourceSpec:
    """Where the fleet repo is and which revision to follow: exactly one of branch, tag, commit.

    With a commit pin, ``branch`` (optional) names where to look for the commit when the server
    refuses to serve a commit by id.
    """

    url: str
    branch: str | None = None
    tag: str | None = None
    commit: str | None = None
    path: str = ""  # a sub-directory of the repo holding the fleet config
    credentials: Credentials = field(default_factory=Credentials)

    def __post_init__(self) -> None:
        if not self.url:
            raise SourceError("the repo URL is empty")
        if self.tag and self.branch:
            raise SourceError("pin the repo by branch, tag or commit, not several")
        if self.commit and self.tag:
            raise SourceError("pin the repo by branch, tag or commit, not several")
        if self.commit is not None and not _SHA.match(self.commit):
            raise SourceError(f"commit pin {self.commit!r} is not a full 40-character commit id")
        if Path(self.path).is_absolute() or ".." in Path(self.path).parts:
            raise SourceError(f"repo path {self.path!r} must be relative and stay inside the repo")

    @property
    def pin(self) -> str:
        """What the agent follows, for messages: ``branch main``, ``tag v1``, ``commit 1a2b3c4``."""
        if self.commit:
            return f"commit {self.commit[:12]}"
        if self.tag:
            return f"tag {self.tag}"
        return f"branch {self.branch or 'main'}"


@dataclass(frozen=True)
class SourceRevision:
    """What one sync produced.

    ``path`` is the checkout directory (or the configured sub-path in it); None when there is no
    usable checkout at all.  ``fetched`` is True when new content was fetched in this sync.
    ``offline`` is True when the remote could not be confirmed and ``path`` is the *cached* last
    checkout; ``error`` then says why.  Never prune unless :attr:`may_prune`.
    """

    commit: str | None
    path: Path | None
    fetched: bool
    offline: bool
    error: str | None
    last_applied: str | None = None
    signature: Verdict | None = None  # the verdict on the commit served or refused (verification on)

    @property
    def may_prune(self) -> bool:
        """True only for a fresh, error-free revision: a cut network must never delete workloads."""
        return not self.offline and self.error is None and self.path is not None


@dataclass(frozen=True)
class _Outcome:
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


def _basic_token(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def _split_credentials(url: str, credentials: Credentials) -> tuple[str, Credentials]:
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


class Source:
    """Keeps ``<state_dir>/source/checkout`` at the pinned revision of the fleet repo."""

    def __init__(
        self,
        spec: SourceSpec,
        state_dir: Path,
        *,
        timeout_seconds: float = NETWORK_TIMEOUT_SECONDS,
        signatures: SignaturePolicy | None = None,
    ) -> None:
        url, credentials = _split_credentials(spec.url, spec.credentials)
        self.spec = spec
        self.url = url  # without credentials: safe to log and to store
        self.credentials = credentials
        self.root = Path(state_dir) / "source"
        self.checkout = self.root / "checkout"
        self._state_file = self.root / "state.json"
        self._timeout = timeout_seconds
        self._secrets = credentials.secrets
        self._env = self._git_environment()
        self._verified = False
        self.round_trips = 0  # network git commands run (ls-remote, fetch): the benchmark reads it
        self.fetches = 0
        policy = signatures or SignaturePolicy()
        self._gate = (
            SignatureGate(policy, self.root / "gnupg", self._run_for_gate) if policy.enabled else None
        )
        self._remote_object: str | None = None  # the object the pinned ref named at the last ls-remote
        self._unavailable: dict[str, float] = {}  # released commits that could not be had, and when

    # ------------------------------------------------------------------------------------- public

    def sync(self) -> SourceRevision:
        """Bring the checkout to the pinned revision; on failure return the cached one (offline)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one sync at a time per state directory (run and once)
            record = self._read_state()
            try:
                if not self._verified:
                    if not self._cache_valid(record):
                        record = self._discard_cache(record)
                    self._verified = True
                return self._sync(record)
            except SourceError as error:
                return self._fall_back(str(error))

    def mark_applied(self, commit: str) -> None:
        """Record ``commit`` as the last one applied successfully (survives restarts)."""
        record = self._read_state()
        record["applied"] = commit
        self._write_state(record)

    @property
    def last_applied(self) -> str | None:
        value = self._read_state().get("applied")
        return str(value) if value else None

    @property
    def checked_out(self) -> str | None:
        value = self._read_state().get("commit")
        return str(value) if value else None

    def checkout_at(self, commit: str) -> Path | None:
        """A checkout of an older ``commit`` of the fleet repo (a rollout wave's released revision),
        kept as a git worktree beside the main checkout, which it never moves; None when it cannot
        be had (fetch refused, signature refused, no checkout yet).  Never raises."""
        target = self.root / "released"
        if not _SHA.match(commit) or not (self.checkout / ".git").is_dir():
            return None
        failed_at = self._unavailable.get(commit)
        if failed_at is not None and time.monotonic() - failed_at < RELEASED_RETRY_SECONDS:
            return None  # not fetched again every pass (a fetch by id may deepen the whole branch)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            head = self._git(["rev-parse", "HEAD"], cwd=target, timeout=None) if target.is_dir() else None
            if head is None or head.status != 0 or head.stdout.strip() != commit:
                try:
                    if not self._has_commit(commit):
                        self._fetch_commit(commit)
                    verdict = self._verify(commit) if self._gate is not None else None
                except SourceError as error:
                    log.warning("source_released_unavailable", commit=commit[:12], error=str(error))
                    self._unavailable[commit] = time.monotonic()
                    return None
                if verdict is not None and not verdict.accepted:
                    log.warning("source_released_refused", commit=commit[:12], reason=verdict.reason)
                    self._unavailable[commit] = time.monotonic()
                    return None
                shutil.rmtree(target, ignore_errors=True)
                self._local(["worktree", "prune"])
                added = self._local(
                    ["worktree", "add", "--quiet", "--detach", "--force", str(target), commit]
                )
                if added.status != 0:
                    log.warning(
                        "source_released_unavailable", commit=commit[:12], error=self._clean(added.stderr)
                    )
                    return None
        path = target / self.spec.path if self.spec.path else target
        return path if path.is_dir() else None

    # ------------------------------------------------------------------------------------ syncing

    def _sync(self, record: dict[str, Any]) -> SourceRevision:
        same_target = record.get("pin") == self.spec.pin and record.get("url") == self.url
        current = record.get("commit") if same_target else None
        policy = self._policy_digest()
        gate = self._gate
        if gate and policy and current and gate.accepted(record, str(current), policy) is None:
            # verification was just turned on, or the trusted keys changed: check what is on disk
            verdict = self._verify(str(current))
            if not verdict.accepted:
                return self._refuse(record, verdict, policy, serving=None)
            gate.accept(record, verdict, policy)
            self._write_state(record)
        refused = SignatureGate.known_refusal(record, policy, self.spec.tag)
        if self.spec.commit and current == self.spec.commit:
            log.debug("source_unchanged", url=self.url, commit=current, pin=self.spec.pin)
            return self._revision(str(current), fetched=False, record=record)
        if self.spec.commit and refused is not None and refused.commit == self.spec.commit:
            return self._refuse(record, refused, str(policy), serving=current, quiet=True)
        if (current is not None or refused is not None) and not self.spec.commit:
            remote = self._ls_remote()
            if remote == current:
                log.debug("source_unchanged", url=self.url, commit=current, pin=self.spec.pin)
                return self._revision(remote, fetched=False, record=record)
            obj = self._remote_object
            if refused and SignatureGate.still_refused(record, refused, remote, obj, self.spec.tag):
                return self._refuse(record, refused, str(policy), serving=current, quiet=True)
            log.info("source_ref_moved", url=self.url, pin=self.spec.pin, commit=remote, previous=current)
        commit, checked = self._fetch_and_check_out()
        record["total_fetches"] = int(record.get("total_fetches", 0)) + 1
        if checked is not None and not checked.accepted:
            return self._refuse(record, checked, str(policy), serving=current)
        record.update({"commit": commit, "pin": self.spec.pin, "url": self.url})
        if checked is not None:
            SignatureGate.accept(record, checked, str(policy))
        self._write_state(record)
        if record["total_fetches"] % _GC_EVERY_FETCHES == 0:
            self._collect_garbage()
        log.info("source_fetched", url=self.url, pin=self.spec.pin, commit=commit)
        return self._revision(commit, fetched=True, record=record)

    # ------------------------------------------------------------------------------- signatures

    def _policy_digest(self) -> str | None:
        if self._gate is None:
            return None
        try:
            return self._gate.digest()
        except SignatureError as error:
            raise SourceError(str(error)) from None

    @property
    def verifications(self) -> int:
        return self._gate.verifications if self._gate else 0

    def _refuse(
        self,
        record: dict[str, Any],
        verdict: Verdict,
        policy: str,
        *,
        serving: str | None,
        quiet: bool = False,
    ) -> SourceRevision:
        """Keep the last verified checkout (if any) and report why the new commit was refused."""
        if not quiet:
            SignatureGate.remember_refusal(
                record, verdict, policy, self._remote_object, running=bool(serving)
            )
            self._write_state(record)
            log.warning(
                "source_commit_refused",
                url=self.url,
                pin=self.spec.pin,
                commit=verdict.commit,
                tag=verdict.tag,
                signer=verdict.signer,
                key=verdict.key,
                reason=verdict.reason,
                serving=serving,
            )
        message = verdict.describe()
        if serving is None:
            return SourceRevision(None, None, False, False, message, self.last_applied, verdict)
        path = self.checkout / self.spec.path if self.spec.path else self.checkout
        return SourceRevision(
            serving, path if path.is_dir() else None, False, False, message, self.last_applied, verdict
        )

    def _verify(self, commit: str, *, cwd: Path | None = None, tag: str | None = None) -> Verdict:
        assert self._gate is not None
        return self._gate.verify(commit, cwd or self.checkout, tag or self.spec.tag)

    def _run_for_gate(self, args: list[str], cwd: Path, env: Mapping[str, str]) -> tuple[int, str]:
        outcome = self._git(args, cwd=cwd, timeout=self._timeout, extra_env=env)
        return outcome.status, self._clean(outcome.stderr + outcome.stdout)

    def _revision(
        self, commit: str, *, fetched: bool, record: Mapping[str, Any] | None = None
    ) -> SourceRevision:
        path = self.checkout / self.spec.path if self.spec.path else self.checkout
        verdict = Verdict.from_record(record.get("signature")) if record and self._gate else None
        if not path.is_dir():
            return SourceRevision(
                commit=commit,
                path=None,
                fetched=fetched,
                offline=False,
                error=f"path {self.spec.path!r} does not exist in {self.url} at commit {commit[:12]}",
                last_applied=self.last_applied,
                signature=verdict,
            )
        return SourceRevision(commit, path, fetched, False, None, self.last_applied, verdict)

    def _fall_back(self, message: str) -> SourceRevision:
        record = self._read_state()
        commit = record.get("commit")
        applied = self.last_applied
        if commit and self._verified and self.checkout.is_dir():
            path = self.checkout / self.spec.path if self.spec.path else self.checkout
            log.warning("source_offline", url=self.url, error=message, serving=commit)
            verdict = Verdict.from_record(record.get("signature")) if self._gate else None
            serving = path if path.is_dir() else None
            return SourceRevision(str(commit), serving, False, True, message, applied, verdict)
        log.error("source_unavailable", url=self.url, error=message)
        return SourceRevision(None, None, fetched=False, offline=True, error=message, last_applied=applied)

    def _ls_remote(self) -> str:
        """The commit the pinned branch or tag points to on the remote."""
        if self.spec.tag:
            refs = [f"refs/tags/{self.spec.tag}", f"refs/tags/{self.spec.tag}^{{}}"]
        else:
            refs = [f"refs/heads/{self.spec.branch or 'main'}"]
        outcome = self._network(["ls-remote", self.url, *refs], cwd=None)
        found: dict[str, str] = {}
        for line in outcome.stdout.splitlines():
            sha, _, ref = line.partition("\t")
            found[ref.strip()] = sha.strip()
        # For an annotated tag, the peeled entry (``^{}``) names the commit; refs[-1] is that entry.
        commit = found.get(refs[-1]) or found.get(refs[0])
        self._remote_object = found.get(refs[0])
        if not commit:
            raise SourceError(f"{self.spec.pin} not found in {self.url}")
        return commit

    def _fetch_and_check_out(self) -> tuple[str, Verdict | None]:
        """Fetch the pinned revision (depth 1), verify it when a policy is set, and check it out.

        A refused commit is fetched but not checked out: the last verified checkout stays.
        A broken cache is cloned again.
        """
        if not (self.checkout / ".git").is_dir():
            self._init()
        else:
            self._local(["remote", "set-url", "origin", self.url])  # the configured URL may have changed
        try:
            return self._fetch_verify_check_out()
        except _CorruptCache as corrupt:
            log.warning("source_cache_corrupt", url=self.url, reason=str(corrupt))
            self._discard_cache(self._read_state())
            self._init()
            return self._fetch_verify_check_out()

    def _fetch_verify_check_out(self) -> tuple[str, Verdict | None]:
        commit = self._fetch()
        verdict = self._verify(commit) if self._gate is not None else None
        if verdict is None or verdict.accepted:
            self._check_out(commit)
        return commit, verdict

    def _fetch(self) -> str:
        spec = self.spec
        if spec.commit:
            return self._fetch_commit(spec.commit)
        if spec.tag:
            ref = f"refs/tags/{spec.tag}"
            self._run_fetch(["--depth=1", "origin", f"+{ref}:{ref}"])
            self._remote_object = self._local_commit(ref)  # the tag object: what a refusal is about
            return self._local_commit(f"{ref}^{{commit}}")
        ref = f"refs/heads/{spec.branch or 'main'}"
        self._run_fetch(["--depth=1", "origin", f"+{ref}:refs/remotes/origin/{spec.branch or 'main'}"])
        return self._local_commit("FETCH_HEAD^{commit}")

    def _fetch_commit(self, commit: str) -> str:
        """Fetch a commit by id; when the server refuses, deepen a fetch of the branch until found."""
        try:
            self._run_fetch(["--depth=1", "origin", commit])
            return self._local_commit(f"{commit}^{{commit}}")
        except SourceError as error:
            if not re.search(r"not our ref|unadvertised object|couldn't find remote ref", str(error), re.I):
                raise
            log.info("source_commit_fetch_refused", url=self.url, commit=commit, fallback="branch history")
        branch = self.spec.branch or "main"
        for depth in ("--depth=50", "--depth=1000", "--unshallow"):
            if depth == "--unshallow" and not (self.checkout / ".git" / "shallow").exists():
                break
            self._run_fetch([depth, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"])
            if self._has_commit(commit):
                return commit
        raise SourceError(f"commit {commit[:12]} not found on branch {branch} of {self.url}")

    def _run_fetch(self, args: Sequence[str]) -> None:
        self.fetches += 1
        self._network(["fetch", "--quiet", "--no-tags", "--no-recurse-submodules", *args], cwd=self.checkout)

    def _check_out(self, commit: str) -> None:
        outcome = self._local(
            ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit]
        )
        if outcome.status != 0:
            raise _CorruptCache(f"checkout of {commit[:12]} failed: {self._clean(outcome.stderr)}")
        self._local(["clean", "-ffdxq"])

    # ------------------------------------------------------------------------------------ the cache

    def _init(self) -> None:
        shutil.rmtree(self.checkout, ignore_errors=True)
        self.checkout.mkdir(parents=True)
        for args in (["init", "--quiet"], ["remote", "add", "origin", self.url]):
            outcome = self._local(args)
            if outcome.status != 0:
                raise SourceError(
                    f"cannot create the checkout in {self.checkout}: {self._clean(outcome.stderr)}"
                )

    def _cache_valid(self, record: Mapping[str, Any]) -> bool:
        """Is the checkout the intact commit it is recorded as?  (First sync only: a few local git runs.)"""
        commit = record.get("commit")
        if not commit:
            return not self.checkout.exists()
        if not (self.checkout / ".git").is_dir():
            return self._invalid("the checkout is missing")
        head = self._local(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        if head.status != 0 or head.stdout.strip() != commit:
            return self._invalid(f"HEAD is {head.stdout.strip() or 'broken'}, recorded {commit}")
        fsck = self._local(["fsck", "--connectivity-only", "--no-dangling", "--no-progress"])
        if fsck.status != 0:
            return self._invalid(f"objects are missing: {self._clean(fsck.stderr or fsck.stdout)[:200]}")
        status = self._local(["status", "--porcelain", "--untracked-files=no"])
        if status.status != 0 or status.stdout.strip():
            return self._invalid("files of the checkout were changed on disk")
        return True

    def _invalid(self, reason: str) -> bool:
        log.warning("source_cache_corrupt", url=self.url, reason=reason)
        return False

    def _discard_cache(self, record: dict[str, Any]) -> dict[str, Any]:
        shutil.rmtree(self.checkout, ignore_errors=True)
        record = {k: v for k, v in record.items() if k not in ("commit", "pin", "signature")}
        self._write_state(record)
        return record

    def _has_commit(self, commit: str) -> bool:
        return self._local(["cat-file", "-e", f"{commit}^{{commit}}"]).status == 0

    def _local_commit(self, rev: str) -> str:
        outcome = self._local(["rev-parse", "--verify", "--quiet", rev])
        if outcome.status != 0:
            raise _CorruptCache(f"{rev} cannot be resolved after the fetch")
        return outcome.stdout.strip()

    def _collect_garbage(self) -> None:
        """Shallow fetches leave old commits behind: drop what is no longer reachable."""
        self._local(["reflog", "expire", "--expire=now", "--all"])
        self._local(["gc", "--quiet", "--prune=now"])

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, record: Mapping[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".state-", suffix=".json")
        with os.fdopen(handle, "w") as stream:
            json.dump(record, stream, indent=2, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self._state_file)

    # --------------------------------------------------------------------------------- running git

    def _git_environment(self) -> dict[str, str]:
        """Hermetic git settings, and the credentials, passed through the environment only."""
        config = [
            ("credential.helper", ""),
            ("protocol.version", "2"),
            ("http.lowSpeedLimit", "1000"),
            ("http.lowSpeedTime", "30"),
            ("gc.auto", "0"),
            ("core.askPass", ""),
        ]
        credentials = self.credentials
        if credentials.password is not None:
            token = _basic_token(credentials.username or "", credentials.password)
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

    def _network(self, args: list[str], cwd: Path | None) -> _Outcome:
        self.round_trips += 1
        outcome = self._git(args, cwd=cwd, timeout=self._timeout)
        if outcome.status != 0:
            raise SourceError(self._explain(outcome))
        return outcome

    def _local(self, args: list[str]) -> _Outcome:
        return self._git(args, cwd=self.checkout, timeout=None)

    def _git(
        self,
        args: list[str],
        *,
        cwd: Path | None,
        timeout: float | None,
        extra_env: Mapping[str, str] | None = None,
    ) -> _Outcome:
        from git.cmd import Git  # GitPython runs `git version` on import: only when git is used

        runner = Git(str(cwd) if cwd else None)
        try:
            status, stdout, stderr = runner.execute(
                ["git", *args],
                env={**self._env, **extra_env} if extra_env else self._env,
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=timeout,
                strip_newline_in_stdout=False,
            )
        except OSError as error:  # git itself missing, or the directory vanished
            raise SourceError(f"cannot run git: {error.strerror or error}") from None
        return _Outcome(int(status), str(stdout), str(stderr))

    def _clean(self, text: str) -> str:
        return scrub(text.strip(), self._secrets)

    def _explain(self, outcome: _Outcome) -> str:
        """A one-line reason from git's stderr, naming the (credential-free) URL."""
        text = self._clean(outcome.stderr)
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
            return f"{self.spec.pin} not found in {url}"
        if outcome.status == -9 or "killed" in lowered:
            return f"cannot reach {url}: no answer within {self._timeout:.0f}s"
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else f"git exited with status {outcome.status}"
        return f"git failed for {url}: {last.removeprefix('fatal: ').removeprefix('error: ')}"


def verify_clone(path: Path, policy: SignaturePolicy, *, tag: str | None = None) -> Verdict:
    """``validate --verify-signatures``: the verdict on a local clone's HEAD (or ``tag``), for CI.

    Raises :class:`SourceError` when ``path`` is not inside a Git work tree or the keys are unusable.
    """
    with tempfile.TemporaryDirectory(prefix="flotilla-verify-") as scratch:
        source = Source(SourceSpec(url=str(path)), Path(scratch), signatures=policy)
        source._policy_digest()
        rev = f"refs/tags/{tag}^{{commit}}" if tag else "HEAD^{commit}"
        head = source._git(["rev-parse", "--verify", "--quiet", rev], cwd=Path(path), timeout=None)
        if head.status != 0:
            what = f"tag {tag}" if tag else "a commit (HEAD)"
            raise SourceError(f"{path}: not a Git clone with {what} to verify")
        return source._verify(head.stdout.strip(), cwd=Path(path), tag=tag)


class _CorruptCache(SourceError):
    """The local checkout is broken: it is discarded and cloned again."""


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
