"""Is a ``pending-*`` Helm release still being worked on, or did the helm that owned it die?  (pure)

Helm's own lock is the pending status itself: ``helm upgrade`` refuses a release whose latest
revision is pending ("another operation is in progress") and the lock never expires, so a helm
killed mid-operation leaves the release stuck.  ``helm rollback`` and ``helm uninstall`` take no lock
at all: run while the original helm still waits, they undo a live operation.  So the agent recovers a
pending release only when one of these rules says the operation is over:

1. **Our own record says its helm is gone.**  Before running helm the agent writes an in-flight
   record (state directory, ``inflight/``) with the helm process id and host; it is removed when helm
   exits.  A record left behind whose helm pid, on this host, is no longer a running helm means the
   agent (or its helm) was killed: recover at once.  A record whose helm still runs: wait.
2. **It is older than any agent's helm could live.**  The agent kills its helm at the release's
   ``--timeout`` plus :data:`agent.helm.KILL_AFTER_TIMEOUT_SECONDS`; a pending revision older than
   that plus :data:`CLOCK_SKEW_SECONDS` (its ``createdAt``, written by the helm that started it) is
   abandoned.  Anything younger — a helm run by an operator, or by an agent on another host — is
   left alone and reported as an operation in progress.

Rule 3, two agents at once, is the agent's Lease (``agent.lease``): no agent acts without it.
These rules are what a future agent self-upgrade must follow too (README, "Crash and concurrency").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from agent.helm import KILL_AFTER_TIMEOUT_SECONDS

CLOCK_SKEW_SECONDS: Final = 30


@dataclass(frozen=True)
class Verdict:
    recover: bool
    reason: str


def judge_pending(
    *,
    status: str,
    revision: int,
    started_at: float | None,
    timeout_seconds: int,
    now: float,
    record: Mapping[str, Any] | None,
    host: str,
    helm_running: Callable[[int], bool],
) -> Verdict:
    """Whether to recover a release left ``status`` at ``revision`` (see the module's rules)."""
    operation = status.removeprefix("pending-")
    if record is not None and record.get("host") == host and isinstance(record.get("helm_pid"), int):
        pid = int(record["helm_pid"])
        if helm_running(pid):
            return Verdict(False, f"helm {operation} (pid {pid}) is still running revision {revision}")
        return Verdict(
            True, f"the helm {operation} that left revision {revision} {status} (pid {pid}) is gone"
        )
    if started_at is None:
        return Verdict(True, f"revision {revision} is {status} and has no start time to judge it by")
    limit = timeout_seconds + KILL_AFTER_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS
    age = now - started_at
    if age > limit:
        return Verdict(True, f"revision {revision} has been {status} for {age:.0f}s, past its {limit}s limit")
    return Verdict(
        False,
        f"a helm {operation} of revision {revision} started {max(age, 0):.0f}s ago and may still be running; "
        f"it is recovered if still {status} after {limit}s",
    )
