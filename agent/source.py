"""The fleet repo, synced into the agent's state directory: what to fetch, verify and check out.

Git itself runs in :mod:`agent.gitprocess` (the only module that starts it); the checkout and its
record live in :mod:`agent.checkout`; signature bookkeeping in :mod:`agent.source_gate`;
:class:`SourceSpec` and :class:`SourceRevision` in :mod:`agent.source_spec`; fetching in
:mod:`agent.source_fetch`.

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

import fcntl
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import structlog

from agent.checkout import CheckoutCache
from agent.gitprocess import Credentials, GitProcess, SourceError, split_credentials, ssh_command
from agent.signatures import SignatureError, SignaturePolicy, Verdict
from agent.source_fetch import RemoteFetching
from agent.source_gate import SignatureGate
from agent.source_spec import COMMIT_ID, SourceRevision, SourceSpec

__all__ = [
    "Credentials",
    "Source",
    "SourceError",
    "SourceRevision",
    "SourceSpec",
    "ssh_command",
    "verify_clone",
]

log = structlog.get_logger(__name__)

NETWORK_TIMEOUT_SECONDS: Final = 120.0
_GC_EVERY_FETCHES: Final = 25


RELEASED_RETRY_SECONDS = 600.0  # a released commit that could not be fetched is tried again after this


class Source(RemoteFetching):
    """Keeps ``<state_dir>/source/checkout`` at the pinned revision of the fleet repo."""

    def __init__(
        self,
        spec: SourceSpec,
        state_dir: Path,
        *,
        timeout_seconds: float = NETWORK_TIMEOUT_SECONDS,
        signatures: SignaturePolicy | None = None,
    ) -> None:
        url, credentials = split_credentials(spec.url, spec.credentials)
        self.spec = spec
        self.url = url  # without credentials: safe to log and to store
        self.credentials = credentials
        self.root = Path(state_dir) / "source"
        self.checkout = self.root / "checkout"
        self.git = GitProcess(url, credentials, pin=spec.pin, timeout=timeout_seconds, workdir=self.checkout)
        self.cache = CheckoutCache(self.git, self.root)
        self._verified = False
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
            record = self.cache.read_state()
            try:
                if not self._verified:
                    if not self.cache.valid(record):
                        record = self.cache.discard(record)
                    self._verified = True
                return self._sync(record)
            except SourceError as error:
                return self._fall_back(str(error))

    def mark_applied(self, commit: str) -> None:
        """Record ``commit`` as the last one applied successfully (survives restarts)."""
        record = self.cache.read_state()
        record["applied"] = commit
        self.cache.write_state(record)

    @property
    def last_applied(self) -> str | None:
        value = self.cache.read_state().get("applied")
        return str(value) if value else None

    @property
    def round_trips(self) -> int:
        """Network git commands run (ls-remote, fetch): the benchmark reads it."""
        return self.git.round_trips

    @property
    def checked_out(self) -> str | None:
        value = self.cache.read_state().get("commit")
        return str(value) if value else None

    def checkout_at(self, commit: str) -> Path | None:
        """A checkout of an older ``commit`` of the fleet repo (a rollout wave's released revision),
        kept as a git worktree beside the main checkout, which it never moves; None when it cannot
        be had (fetch refused, signature refused, no checkout yet).  Never raises."""
        target = self.root / "released"
        if not COMMIT_ID.match(commit) or not (self.checkout / ".git").is_dir():
            return None
        failed_at = self._unavailable.get(commit)
        if failed_at is not None and time.monotonic() - failed_at < RELEASED_RETRY_SECONDS:
            return None  # not fetched again every pass (a fetch by id may deepen the whole branch)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            head = self.git.run(["rev-parse", "HEAD"], cwd=target, timeout=None) if target.is_dir() else None
            if head is None or head.status != 0 or head.stdout.strip() != commit:
                try:
                    if not self.cache.has_commit(commit):
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
                self.git.local(["worktree", "prune"])
                added = self.git.local(
                    ["worktree", "add", "--quiet", "--detach", "--force", str(target), commit]
                )
                if added.status != 0:
                    log.warning(
                        "source_released_unavailable", commit=commit[:12], error=self.git.clean(added.stderr)
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
            self.cache.write_state(record)
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
        self.cache.write_state(record)
        if record["total_fetches"] % _GC_EVERY_FETCHES == 0:
            self.cache.collect_garbage()
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
            self.cache.write_state(record)
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
        outcome = self.git.run(args, cwd=cwd, timeout=self.git.timeout, extra_env=env)
        return outcome.status, self.git.clean(outcome.stderr + outcome.stdout)

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
        record = self.cache.read_state()
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


def verify_clone(path: Path, policy: SignaturePolicy, *, tag: str | None = None) -> Verdict:
    """``validate --verify-signatures``: the verdict on a local clone's HEAD (or ``tag``), for CI.

    Raises :class:`SourceError` when ``path`` is not inside a Git work tree or the keys are unusable.
    """
    with tempfile.TemporaryDirectory(prefix="flotilla-verify-") as scratch:
        source = Source(SourceSpec(url=str(path)), Path(scratch), signatures=policy)
        source._policy_digest()
        rev = f"refs/tags/{tag}^{{commit}}" if tag else "HEAD^{commit}"
        head = source.git.run(["rev-parse", "--verify", "--quiet", rev], cwd=Path(path), timeout=None)
        if head.status != 0:
            what = f"tag {tag}" if tag else "a commit (HEAD)"
            raise SourceError(f"{path}: not a Git clone with {what} to verify")
        return source._verify(head.stdout.strip(), cwd=Path(path), tag=tag)
