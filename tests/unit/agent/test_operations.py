"""When is a pending-* release abandoned (recover it) and when may a helm still be working on it?"""

from __future__ import annotations

from typing import Any

import pytest

from agent.helm import KILL_AFTER_TIMEOUT_SECONDS
from agent.operations import CLOCK_SKEW_SECONDS, judge_pending

NOW = 1_000_000.0
LIMIT = 60 + KILL_AFTER_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS


def judge(
    *, age: float | None, record: dict[str, Any] | None = None, running: bool = False
) -> tuple[bool, str]:
    verdict = judge_pending(
        status="pending-upgrade",
        revision=4,
        started_at=None if age is None else NOW - age,
        timeout_seconds=60,
        now=NOW,
        record=record,
        host="node-a",
        helm_running=lambda pid: running,
    )
    return verdict.recover, verdict.reason


@pytest.mark.parametrize(
    ("age", "record", "running", "recover", "says"),
    [
        pytest.param(5, None, False, False, "may still be running", id="young and nobody known: wait"),
        pytest.param(LIMIT - 1, None, False, False, "may still be running", id="just inside the limit: wait"),
        pytest.param(
            LIMIT + 1, None, False, True, "past its", id="older than any agent's helm lives: recover"
        ),
        pytest.param(
            5, {"host": "node-a", "helm_pid": 42}, False, True, "is gone", id="our helm died: recover"
        ),
        pytest.param(
            LIMIT + 100,
            {"host": "node-a", "helm_pid": 42},
            True,
            False,
            "still running",
            id="our helm runs: wait",
        ),
        pytest.param(
            5, {"host": "node-b", "helm_pid": 42}, False, False, "may still", id="other host: by age"
        ),
        pytest.param(None, None, False, True, "no start time", id="no start time to judge by: recover"),
    ],
)
def test_pending_release_rules(
    age: float | None, record: dict[str, Any] | None, running: bool, recover: bool, says: str
) -> None:
    decided, reason = judge(age=age, record=record, running=running)
    assert decided is recover
    assert says in reason
    assert "revision 4" in reason
