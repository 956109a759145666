"""What to do with one planned release this pass (pure).

The reconcile pass observes (planned release, Helm history, dependency states, remembered
failures) and this module picks one action; ``reconcile`` executes it.  Keeping the decision in one
function over plain data makes every branch a table test.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from agent.releases import ReleaseHistory, digest_label


class Action(enum.Enum):
    PAUSED = "paused"  # leave the release exactly as it is
    WAIT_DEPENDENCIES = "wait-dependencies"  # a dependsOn bundle is not Ready yet
    CONFLICT = "conflict"  # a release of that name exists that Flotilla does not own
    RECOVER_PENDING = "recover-pending"  # a crash left the release pending-*: roll back / reinstall
    BACKOFF = "backoff"  # this exact digest failed recently: report the failure, retry later
    INSTALL = "install"
    UPGRADE = "upgrade"
    UNCHANGED = "unchanged"  # the deployed digest is the planned one: no helm call at all
    # Set by the pass, not by decide(): another helm operation or another agent is working on it.
    WAIT = "wait"


@dataclass(frozen=True)
class Failure:
    """A remembered failure of one release at one digest."""

    digest: str
    message: str
    attempts: int
    retry_at: float  # monotonic-independent: seconds since the epoch


def decide(
    *,
    digest: str,
    history: ReleaseHistory | None,
    paused: bool,
    dependencies_ready: bool,
    failure: Failure | None,
    now: float,
) -> Action:
    if paused:
        return Action.PAUSED
    if history is not None and not history.current.owned:
        return Action.CONFLICT
    if history is not None and history.current.pending:
        return Action.RECOVER_PENDING
    if not dependencies_ready:
        return Action.WAIT_DEPENDENCIES
    if (
        history is not None
        and history.current.status == "deployed"
        and history.current.digest == digest_label(digest)
    ):
        return Action.UNCHANGED
    if failure is not None and failure.digest == digest and now < failure.retry_at:
        return Action.BACKOFF
    if history is None or history.last_deployed() is None:
        return Action.INSTALL
    return Action.UPGRADE


def next_retry(previous: Failure | None, digest: str, message: str, now: float, interval: float) -> Failure:
    """Exponential backoff per (release, digest): interval, 2x, 4x, ... capped at one hour."""
    attempts = previous.attempts + 1 if previous is not None and previous.digest == digest else 1
    delay = min(interval * 2 ** (attempts - 1), 3600.0)
    return Failure(digest=digest, message=message, attempts=attempts, retry_at=now + delay)
