"""The agent's checkout of the fleet repo and its record (``<state_dir>/source``): created, checked
out, verified intact on the first sync, discarded when broken, garbage-collected; the record
(``state.json``: commit, pin, url, last applied, signature bookkeeping) written atomically.
Git runs through :class:`agent.gitprocess.GitProcess`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from agent.gitprocess import GitProcess, SourceError

log = structlog.get_logger(__name__)


class CorruptCache(SourceError):
    """The local checkout is broken: it is discarded and cloned again."""


class CheckoutCache:
    """The checkout directory (``git.workdir``) and its record, in ``root``."""

    def __init__(self, git: GitProcess, root: Path) -> None:
        self.git = git
        self.root = root
        self.path = git.workdir
        self.state_file = root / "state.json"

    def check_out(self, commit: str) -> None:
        """Move the work tree to ``commit`` (a failure means a broken cache: :class:`CorruptCache`)."""
        outcome = self.git.local(
            ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--force", "--detach", commit]
        )
        if outcome.status != 0:
            raise CorruptCache(f"checkout of {commit[:12]} failed: {self.git.clean(outcome.stderr)}")
        self.git.local(["clean", "-ffdxq"])

    def init(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        for args in (["init", "--quiet"], ["remote", "add", "origin", self.git.url]):
            outcome = self.git.local(args)
            if outcome.status != 0:
                raise SourceError(
                    f"cannot create the checkout in {self.path}: {self.git.clean(outcome.stderr)}"
                )

    def valid(self, record: Mapping[str, Any]) -> bool:
        """Is the checkout the intact commit it is recorded as?  (First sync only: a few local git runs.)"""
        commit = record.get("commit")
        if not commit:
            return not self.path.exists()
        if not (self.path / ".git").is_dir():
            return self._invalid("the checkout is missing")
        head = self.git.local(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        if head.status != 0 or head.stdout.strip() != commit:
            return self._invalid(f"HEAD is {head.stdout.strip() or 'broken'}, recorded {commit}")
        fsck = self.git.local(["fsck", "--connectivity-only", "--no-dangling", "--no-progress"])
        if fsck.status != 0:
            return self._invalid(f"objects are missing: {self.git.clean(fsck.stderr or fsck.stdout)[:200]}")
        status = self.git.local(["status", "--porcelain", "--untracked-files=no"])
        if status.status != 0 or status.stdout.strip():
            return self._invalid("files of the checkout were changed on disk")
        return True

    def _invalid(self, reason: str) -> bool:
        log.warning("source_cache_corrupt", url=self.git.url, reason=reason)
        return False

    def discard(self, record: dict[str, Any]) -> dict[str, Any]:
        shutil.rmtree(self.path, ignore_errors=True)
        record = {k: v for k, v in record.items() if k not in ("commit", "pin", "signature")}
        self.write_state(record)
        return record

    def has_commit(self, commit: str) -> bool:
        return self.git.local(["cat-file", "-e", f"{commit}^{{commit}}"]).status == 0

    def resolve(self, rev: str) -> str:
        outcome = self.git.local(["rev-parse", "--verify", "--quiet", rev])
        if outcome.status != 0:
            raise CorruptCache(f"{rev} cannot be resolved after the fetch")
        return outcome.stdout.strip()

    def collect_garbage(self) -> None:
        """Shallow fetches leave old commits behind: drop what is no longer reachable."""
        self.git.local(["reflog", "expire", "--expire=now", "--all"])
        self.git.local(["gc", "--quiet", "--prune=now"])

    def read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, record: Mapping[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".state-", suffix=".json")
        with os.fdopen(handle, "w") as stream:
            json.dump(record, stream, indent=2, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, self.state_file)
