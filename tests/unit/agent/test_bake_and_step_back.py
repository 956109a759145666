"""Pure rules of the agent's rollout additions: the bake watch (agent/bakewatch.py), the hub's
``released`` commit in a hold (agent/gates.py) and the hub's prune ids (hub/prune_allowances.py)."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from agent.bakewatch import Watch, judge
from agent.fleet.model import WavePosition
from agent.fleet.rollout import RolloutSpec, Wave
from agent.gates import Gate, decide, released_commit
from hub import prune_allowances

C, R, D = "c" * 40, "a" * 40, "d" * 64
WAVE = WavePosition(
    index=1, name="canary", count=2, spec=RolloutSpec((Wave("canary", cluster_names=("a",)),))
)
WATCH = Watch(commit=C, revision=3, previous=2)


def test_a_watched_change_that_turns_degraded_before_it_baked_is_rolled_back():
    assert judge(WATCH, revision=3, bundle_state="Degraded", now=100.0, bake_seconds=60) == ("rollback", None)


def test_a_watched_change_is_done_once_ready_for_the_whole_bake_time_and_the_clock_restarts_when_not():
    verdict, kept = judge(WATCH, revision=3, bundle_state="Ready", now=100.0, bake_seconds=60)
    assert (verdict, kept) == ("watching", Watch(C, 3, 2, ready_since=100.0))
    assert kept is not None
    verdict, left = judge(kept, revision=3, bundle_state="InProgress", now=130.0, bake_seconds=60)
    assert (verdict, left) == ("watching", WATCH)  # left Ready: the bake starts again
    assert judge(kept, revision=3, bundle_state="Ready", now=160.0, bake_seconds=60) == ("baked", None)
    assert judge(WATCH, revision=3, bundle_state="Ready", now=5.0, bake_seconds=0) == ("baked", None)


def test_a_release_another_change_replaced_is_no_longer_judged():
    assert judge(WATCH, revision=4, bundle_state="Degraded", now=1.0, bake_seconds=60) == ("gone", None)
    assert judge(WATCH, revision=None, bundle_state="Degraded", now=1.0, bake_seconds=60) == ("gone", None)


@given(
    st.sampled_from(["Ready", "InProgress", "Pending", "Modified", "Degraded", "Failed"]),
    st.integers(0, 10**6),
)
def test_only_degraded_rolls_back_and_a_kept_watch_is_always_the_same_change(state, now):
    verdict, kept = judge(WATCH, revision=3, bundle_state=state, now=float(now), bake_seconds=300)
    assert (verdict == "rollback") == (state == "Degraded")
    if kept is not None:
        assert (kept.commit, kept.revision, kept.previous) == (C, 3, 2)


def test_a_hold_names_the_revision_the_wave_was_released_for_only_when_well_formed():
    answer = {"commit": C, "decision": "hold", "reason": "paused", "released": {"commit": R}}
    assert decide(wave=WAVE, commit=C, digest=D, cached=None, answer=answer) == Gate(
        False, "waiting for wave canary: paused", R
    )
    for bad in ({"commit": "HEAD"}, {"commit": 7}, "a" * 40, None, {"commit": "A" * 40}):
        assert released_commit({"released": bad}) is None
    cached = {"commit": C, "decision": "hold", "reason": "paused", "released": {"commit": R}}
    offline = decide(wave=WAVE, commit=C, digest=D, cached=cached, answer=None)
    assert offline.released == R  # the hub's last word holds while it cannot be asked
    other = decide(wave=WAVE, commit=C, digest=D, cached={**cached, "commit": "e" * 40}, answer=None)
    assert other.released is None  # ... but only for the same commit


def test_prune_ids_are_checked_against_the_cluster_and_an_allowance_is_taken_once():
    assert prune_allowances.check_id("store-1", "store-1:0123456789ab") is None
    assert "belongs to cluster 'store-2'" in str(prune_allowances.check_id("store-1", "store-2:0123456789ab"))
    assert "is not of the form" in str(prune_allowances.check_id("store-1", "store-1:xyz"))
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert prune_allowances.allow(conn, "store-1", "store-1:0123456789ab", "ops")
    assert not prune_allowances.allow(conn, "store-1", "store-1:0123456789ab", "ops")  # already waiting
    assert prune_allowances.take(conn, "store-2", "store-1:0123456789ab") is None  # another cluster's ask
    assert prune_allowances.take(conn, "store-1", "store-1:0123456789ab") == "ops"
    assert prune_allowances.take(conn, "store-1", "store-1:0123456789ab") is None  # consumed
