"""What the agent asks of the fleet repo and what one sync gives back: :class:`SourceSpec` (where
the repo is and which revision to follow) and :class:`SourceRevision` (the result of
:meth:`agent.source.Source.sync`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.gitprocess import Credentials, SourceError
from agent.signatures import Verdict

COMMIT_ID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


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
        if self.commit is not None and not COMMIT_ID.match(self.commit):
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
