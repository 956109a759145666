"""Fetching the pinned revision of the fleet repo for :class:`agent.source.Source`: ``ls-remote``,
shallow single-ref fetches, commits fetched by id (or found by deepening the branch), and the
checkout of what was fetched once its signature is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agent.checkout import CheckoutCache, CorruptCache
from agent.gitprocess import GitProcess, SourceError
from agent.signatures import Verdict
from agent.source_gate import SignatureGate
from agent.source_spec import SourceSpec

log = structlog.get_logger(__name__)


class RemoteFetching:
    """The fetching half of :class:`agent.source.Source` (a mixin: ``Source`` sets these attributes)."""

    spec: SourceSpec
    url: str
    checkout: Path
    git: GitProcess
    cache: CheckoutCache
    fetches: int
    _gate: SignatureGate | None
    _remote_object: str | None

    if TYPE_CHECKING:

        def _verify(self, commit: str, *, cwd: Path | None = None, tag: str | None = None) -> Verdict: ...

    def _ls_remote(self) -> str:
        """The commit the pinned branch or tag points to on the remote."""
        if self.spec.tag:
            refs = [f"refs/tags/{self.spec.tag}", f"refs/tags/{self.spec.tag}^{{}}"]
        else:
            refs = [f"refs/heads/{self.spec.branch or 'main'}"]
        outcome = self.git.network(["ls-remote", self.url, *refs], cwd=None)
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
            self.cache.init()
        else:
            self.git.local(["remote", "set-url", "origin", self.url])  # the configured URL may have changed
        try:
            return self._fetch_verify_check_out()
        except CorruptCache as corrupt:
            log.warning("source_cache_corrupt", url=self.url, reason=str(corrupt))
            self.cache.discard(self.cache.read_state())
            self.cache.init()
            return self._fetch_verify_check_out()

    def _fetch_verify_check_out(self) -> tuple[str, Verdict | None]:
        commit = self._fetch()
        verdict = self._verify(commit) if self._gate is not None else None
        if verdict is None or verdict.accepted:
            self.cache.check_out(commit)
        return commit, verdict

    def _fetch(self) -> str:
        spec = self.spec
        if spec.commit:
            return self._fetch_commit(spec.commit)
        if spec.tag:
            ref = f"refs/tags/{spec.tag}"
            self._run_fetch(["--depth=1", "origin", f"+{ref}:{ref}"])
            self._remote_object = self.cache.resolve(ref)  # the tag object: what a refusal is about
            return self.cache.resolve(f"{ref}^{{commit}}")
        ref = f"refs/heads/{spec.branch or 'main'}"
        self._run_fetch(["--depth=1", "origin", f"+{ref}:refs/remotes/origin/{spec.branch or 'main'}"])
        return self.cache.resolve("FETCH_HEAD^{commit}")

    def _fetch_commit(self, commit: str) -> str:
        """Fetch a commit by id; when the server refuses, deepen a fetch of the branch until found."""
        try:
            self._run_fetch(["--depth=1", "origin", commit])
            return self.cache.resolve(f"{commit}^{{commit}}")
        except SourceError as error:
            if not re.search(r"not our ref|unadvertised object|couldn't find remote ref", str(error), re.I):
                raise
            log.info("source_commit_fetch_refused", url=self.url, commit=commit, fallback="branch history")
        branch = self.spec.branch or "main"
        for depth in ("--depth=50", "--depth=1000", "--unshallow"):
            if depth == "--unshallow" and not (self.checkout / ".git" / "shallow").exists():
                break
            self._run_fetch([depth, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}"])
            if self.cache.has_commit(commit):
                return commit
        raise SourceError(f"commit {commit[:12]} not found on branch {branch} of {self.url}")

    def _run_fetch(self, args: Sequence[str]) -> None:
        self.fetches += 1
        self.git.network(
            ["fetch", "--quiet", "--no-tags", "--no-recurse-submodules", *args], cwd=self.checkout
        )
