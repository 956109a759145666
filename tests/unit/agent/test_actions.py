"""The per-release decision table: which action a planned release gets from what the cluster has."""

from __future__ import annotations

import pytest

from agent.actions import Action, Failure, decide, next_retry
from agent.releases import DIGEST_LABEL, OWNER_LABEL, OWNER_VALUE, ReleaseHistory, ReleaseRecord, digest_label

DIGEST = "a" * 64


def history(*statuses: str, digest: str = DIGEST, owned: bool = True) -> ReleaseHistory:
    labels = {DIGEST_LABEL: digest_label(digest)}
    if owned:
        labels[OWNER_LABEL] = OWNER_VALUE
    return ReleaseHistory(
        tuple(
            ReleaseRecord("web", "ns", revision, status, labels=labels)
            for revision, status in enumerate(statuses, 1)
        )
    )


@pytest.mark.parametrize(
    ("observed", "paused", "deps_ready", "failure", "expected"),
    [
        pytest.param(None, False, True, None, Action.INSTALL, id="nothing installed yet is installed"),
        pytest.param(
            history("deployed"), False, True, None, Action.UNCHANGED, id="same digest deployed needs no helm"
        ),
        pytest.param(
            history("deployed", digest="b" * 64),
            False,
            True,
            None,
            Action.UPGRADE,
            id="a new digest is upgraded",
        ),
        pytest.param(history("deployed"), True, True, None, Action.PAUSED, id="paused wins over everything"),
        pytest.param(
            history("deployed", owned=False), False, True, None, Action.CONFLICT, id="a hand-made release"
        ),
        pytest.param(
            history("deployed", "pending-upgrade"),
            False,
            True,
            None,
            Action.RECOVER_PENDING,
            id="pending is recovered",
        ),
        pytest.param(
            None, False, False, None, Action.WAIT_DEPENDENCIES, id="unready dependencies hold it back"
        ),
        pytest.param(
            history("deployed", digest="b" * 64),
            False,
            True,
            Failure(DIGEST, "boom", 1, retry_at=200.0),
            Action.BACKOFF,
            id="a digest that just failed waits for its retry time",
        ),
        pytest.param(
            history("deployed", digest="b" * 64),
            False,
            True,
            Failure(DIGEST, "boom", 1, retry_at=50.0),
            Action.UPGRADE,
            id="after the retry time it is tried again",
        ),
        pytest.param(
            history("deployed", digest="b" * 64),
            False,
            True,
            Failure("c" * 64, "boom", 3, retry_at=200.0),
            Action.UPGRADE,
            id="a failure of another digest does not hold back a fix",
        ),
        pytest.param(
            history("failed"), False, True, None, Action.INSTALL, id="a failed first install is reinstalled"
        ),
    ],
)
def test_decide(observed, paused, deps_ready, failure, expected):
    assert (
        decide(
            digest=DIGEST,
            history=observed,
            paused=paused,
            dependencies_ready=deps_ready,
            failure=failure,
            now=100.0,
        )
        is expected
    )


def test_retry_delay_doubles_per_attempt_of_the_same_digest_and_is_capped_at_an_hour():
    first = next_retry(None, DIGEST, "boom", now=0.0, interval=60)
    second = next_retry(first, DIGEST, "boom", now=0.0, interval=60)
    assert (first.attempts, first.retry_at) == (1, 60.0)
    assert (second.attempts, second.retry_at) == (2, 120.0)
    many = first
    for _ in range(20):
        many = next_retry(many, DIGEST, "boom", now=0.0, interval=60)
    assert many.retry_at == 3600.0
    assert next_retry(many, "d" * 64, "other", now=0.0, interval=60).attempts == 1
