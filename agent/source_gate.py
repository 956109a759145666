"""The source's signature gate: which fetched commit may be checked out, and what was refused.

:class:`agent.source.Source` owns the flow and the git runner; this class decides and keeps the
bookkeeping in the source's state record, so that a commit is verified once: a commit accepted
under the current policy is not checked again, and a commit refused under it is not fetched or
checked again until the ref moves or the trusted keys change.  Git runs through the runner the
source hands in (:mod:`agent.gitprocess` stays the only place that starts git).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from agent.signatures import SignaturePolicy, TrustStore, Verdict, judge

log = structlog.get_logger(__name__)

# (git arguments, working directory, extra environment) -> (exit status, scrubbed output)
GitRunner = Callable[[list[str], Path, Mapping[str, str]], tuple[int, str]]


class SignatureGate:
    def __init__(self, policy: SignaturePolicy, home: Path, run_git: GitRunner) -> None:
        self.trust = TrustStore(policy, home)
        self._run_git = run_git
        self.verifications = 0  # signature checks run (git verify-commit/verify-tag): the benchmark reads it

    def digest(self) -> str:
        """The current policy's fingerprint (raises SignatureError when the keys are unusable)."""
        return self.trust.digest()

    def verify(self, commit: str, cwd: Path, tag: str | None) -> Verdict:
        """Check ``tag`` (tag pins) or ``commit`` with git's own ``verify-tag``/``verify-commit``."""
        self.verifications += 1
        what = ["verify-tag", "--raw", f"refs/tags/{tag}"] if tag else ["verify-commit", "--raw", commit]
        config = [arg for key, value in self.trust.git_config() for arg in ("-c", f"{key}={value}")]
        status, output = self._run_git([*config, *what], cwd, self.trust.environment())
        verdict = judge(output, status, mode=self.trust.policy.mode, commit=commit, tag=tag)
        log.info("source_signature_checked", commit=commit, tag=tag, accepted=verdict.accepted,
                 signer=verdict.signer, key=verdict.key, reason=verdict.reason or None)  # fmt: skip
        return verdict

    @staticmethod
    def accepted(record: Mapping[str, Any], commit: str, policy: str) -> Verdict | None:
        """The verdict that let ``commit`` be checked out, if it was given under ``policy``."""
        verdict = Verdict.from_record(record.get("signature"))
        if verdict is None or verdict.commit != commit or record["signature"].get("policy") != policy:
            return None
        return verdict

    @staticmethod
    def accept(record: MutableMapping[str, Any], verdict: Verdict, policy: str) -> None:
        record["signature"] = {**verdict.to_record(), "policy": policy}
        record.pop("refused", None)

    @staticmethod
    def known_refusal(record: Mapping[str, Any], policy: str | None, tag: str | None) -> Verdict | None:
        """The verdict on a commit refused before under the same policy (the keys did not change)."""
        refused = record.get("refused")
        if policy is None or not isinstance(refused, dict) or refused.get("policy") != policy:
            return None
        verdict = Verdict.from_record(refused)
        return verdict if verdict is not None and verdict.tag == tag else None

    @staticmethod
    def still_refused(
        record: Mapping[str, Any], refused: Verdict, remote: str, remote_object: str | None, tag: str | None
    ) -> bool:
        """Is the remote still the refused object?  (A tag can be re-made on the same commit:
        ``remote_object`` is the tag object the pinned ref names now.)"""
        if refused.commit != remote:
            return False
        return not tag or record["refused"].get("object") == remote_object

    @staticmethod
    def remember_refusal(
        record: MutableMapping[str, Any],
        verdict: Verdict,
        policy: str,
        remote_object: str | None,
        *,
        running: bool,
    ) -> None:
        """Record the refusal; when the refused commit is the one on disk, it is no longer served."""
        record["refused"] = {**verdict.to_record(), "policy": policy, "object": remote_object}
        if not running:
            record.pop("commit", None)
            record.pop("signature", None)
