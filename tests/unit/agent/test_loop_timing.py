"""When the next pass runs: interval plus jitter when healthy, fast backoff after failures."""

from __future__ import annotations

import random

from agent.between_passes import FIRST_RETRY_SECONDS, next_wait


def test_a_healthy_agent_waits_the_interval_plus_at_most_ten_percent_jitter():
    rng = random.Random(7)
    waits = [next_wait(60, 0, rng) for _ in range(200)]
    assert all(60 <= wait <= 66 for wait in waits)
    assert max(waits) - min(waits) > 3, "jitter must spread a fleet restarted at once"


def test_after_failures_the_wait_starts_short_and_doubles_up_to_the_interval():
    rng = random.Random(7)
    assert [next_wait(60, n, rng) for n in range(1, 6)] == [
        FIRST_RETRY_SECONDS,
        2 * FIRST_RETRY_SECONDS,
        4 * FIRST_RETRY_SECONDS,
        8 * FIRST_RETRY_SECONDS,
        60,
    ]
