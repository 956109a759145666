"""The agent's readiness: Ready only once *this* process has completed one full reconcile pass.

A self-upgrade is judged by Kubernetes' own rollout: the new pod counts as available only when its
readiness probe (``flotilla-agent ready``) passes, and that needs ``ready.json`` in the state
directory naming this pod (its hostname) and a live agent process.  The file is removed when the
agent starts and written after a pass that pulled (or reused the cached checkout of) the fleet repo,
reached the API server and went through every release.  A pod that crashes at start, cannot read
the repo or cannot reach the API server therefore never becomes Ready, its rollout exceeds
``progressDeadlineSeconds``, and the old agent (still running: the Deployment surges, see
``agent.selfupgrade``) rolls the release back.  Once Ready, an agent stays Ready while it runs:
being offline is ordinary at the edge.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from agent import inflight, state

FILE = "ready.json"
# The probe starts Python (about 0.5 s of CPU): not too often on a small board.
PROBE_PERIOD_SECONDS = 20
# How long a Deployment rollout of the agent may take before Kubernetes calls it failed.
PROGRESS_DEADLINE_SECONDS = 600


def clear(state_dir: Path) -> None:
    (state_dir / FILE).unlink(missing_ok=True)


def mark(state_dir: Path, commit: str | None) -> None:
    state.write_json_atomic(
        state_dir / FILE,
        {"host": socket.gethostname(), "pid": os.getpid(), "commit": commit, "at": time.time()},
    )


def is_ready(record: Any, host: str, alive: bool) -> tuple[bool, str]:
    """Pure: (ready?, why) for the record read from ``ready.json``."""
    if not isinstance(record, dict):
        return False, "no completed pass yet"
    if record.get("host") != host:
        return False, f"the last completed pass was by {record.get('host')!r}, not this pod"
    if not alive:
        return False, "the agent process that completed the pass is gone"
    return True, f"completed a pass at commit {str(record.get('commit') or '-')[:12]}"


def check(state_dir: Path) -> tuple[bool, str]:
    record = state.read_json(state_dir / FILE)
    pid = record.get("pid") if isinstance(record, dict) else None
    alive = isinstance(pid, int) and inflight.process_alive(pid)
    return is_ready(record, socket.gethostname(), alive)


def probe_manifest() -> dict[str, Any]:
    """The container's readiness probe (the same in ``manifests`` and the chart)."""
    return {
        "readinessProbe": {
            "exec": {"command": ["flotilla-agent", "ready"]},
            "initialDelaySeconds": 5,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 10,
            "failureThreshold": 3,
        }
    }


def pass_proves_agent(
    commit: str | None, error: str | None, cluster_error: str | None, problems: int
) -> bool:
    """Pure: did a pass show this agent works?  It read a commit of the fleet repo (fetched or the
    cached checkout), the repo parsed and planned for this cluster, and the API server answered.
    Workload bundles failing does not count against the agent: that is theirs to report."""
    return commit is not None and error is None and cluster_error is None and problems == 0
