"""The hub's wave and gate rules (hub/rollouts.py), as pure functions over members and a memory."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.rollout_model import Member, Memory, WaveSpec
from hub.rollouts import advance, amount, gate

C = "c" * 40
OLD = "0" * 40
WAVES = (
    WaveSpec("canary", bake_seconds=60, deadline_seconds=600),
    WaveSpec("stores", max_failed="50%", bake_seconds=0, deadline_seconds=300),
    WaveSpec("rest"),
)


def member(name: str, wave: int, state: str = "Ready", commit: str | None = C, **kw: object) -> Member:
    return Member(name, wave, commit, state, **kw)  # type: ignore[arg-type]


def fleet(**overrides: Member) -> list[Member]:
    base = {
        "can-1": member("can-1", 1),
        "sto-1": member("sto-1", 2, "Pending", holding=True),
        "sto-2": member("sto-2", 2, "Pending", holding=True),
        "oth-1": member("oth-1", 3, "Pending", holding=True),
    }
    base.update(overrides)
    return list(base.values())


def test_wave_1_is_released_at_once_and_wave_2_only_after_the_canary_baked():
    memory = Memory.start("web", C, WAVES, now=0)
    view = advance(memory, fleet(), 10, paused=False)
    assert memory.released.keys() == {1}
    assert view.waves[0].state == "baking"
    assert view.waves[1].state == "waiting"
    answer = gate(view, memory, fleet()[1], 10, current=True)
    assert answer.decision == "hold"
    assert answer.reason.startswith("waiting for wave canary (baking")
    view = advance(memory, fleet(), 69, paused=False)
    assert 2 not in memory.released  # 59 s Ready: one more second to bake
    view = advance(memory, fleet(), 70, paused=False)
    assert memory.released == {1: 0, 2: 70}
    assert gate(view, memory, fleet()[1], 70, current=True).decision == "go"
    assert gate(view, memory, fleet()[3], 70, current=True).decision == "hold"  # wave 3 not yet


def test_the_bake_clock_restarts_when_a_canary_leaves_ready():
    memory = Memory.start("web", C, WAVES, now=0)
    advance(memory, fleet(), 10, paused=False)
    advance(memory, fleet(**{"can-1": member("can-1", 1, "InProgress")}), 50, paused=False)
    advance(memory, fleet(), 60, paused=False)
    advance(memory, fleet(), 119, paused=False)
    assert 2 not in memory.released
    advance(memory, fleet(), 120, paused=False)
    assert 2 in memory.released


def test_an_offline_cluster_that_never_reported_the_commit_stops_blocking_at_the_deadline():
    offline = member("can-2", 1, "Ready", commit=OLD, online=False)
    memory = Memory.start("web", C, WAVES, now=0)
    view = advance(memory, fleet(**{"can-2": offline}), 100, paused=False)
    assert view.waves[0].counts["offline"] == 1
    assert view.waves[0].counts["failed"] == 0
    advance(memory, fleet(**{"can-2": offline}), 599, paused=False)
    assert 2 not in memory.released
    view = advance(memory, fleet(**{"can-2": offline}), 600, paused=False)
    assert 2 in memory.released
    assert view.waves[0].state == "released"


def test_a_cluster_that_reported_the_commit_and_is_still_applying_blocks_even_past_the_deadline():
    applying = member("can-1", 1, "InProgress")
    memory = Memory.start("web", C, WAVES, now=0)
    view = advance(memory, fleet(**{"can-1": applying}), 10_000, paused=False)
    assert 2 not in memory.released
    assert view.waves[0].state == "applying"


def test_failures_over_the_budget_halt_the_rollout_for_good():
    memory = Memory.start("web", C, WAVES, now=0)
    advance(memory, fleet(), 1, paused=False)  # the hub first sees the canary Ready: its bake starts
    advance(memory, fleet(), 100, paused=False)
    assert 2 in memory.released
    one_failed = fleet(**{"sto-1": member("sto-1", 2, "Failed", error="boom")})
    view = advance(memory, one_failed, 110, paused=False)
    assert memory.halted_at is None  # 1 of 2 is within 50 %
    two_failed = fleet(
        **{"sto-1": member("sto-1", 2, "Failed"), "sto-2": member("sto-2", 2, "Pending", failed=True)}
    )
    view = advance(memory, two_failed, 120, paused=False)
    assert view.state == "halted"
    assert memory.halted_wave == 2
    assert {c.cluster for c in view.failing} == {"sto-1", "sto-2"}
    # even when the failed clusters recover, nothing further is released for this commit
    view = advance(
        memory, fleet(**{"sto-1": member("sto-1", 2), "sto-2": member("sto-2", 2)}), 9999, paused=False
    )
    assert 3 not in memory.released
    assert view.state == "halted"
    answer = gate(view, memory, fleet()[3], 9999, current=True)
    assert answer.decision == "hold"
    assert "halted in wave stores" in answer.reason


def test_a_canary_failure_halts_with_the_default_budget_of_zero():
    memory = Memory.start("web", C, WAVES, now=0)
    view = advance(memory, fleet(**{"can-1": member("can-1", 1, "Failed")}), 5, paused=False)
    assert view.state == "halted"
    assert view.waves[0].state == "halted"
    assert gate(view, memory, fleet()[0], 5, current=True).decision == "hold"


def test_a_paused_rollout_releases_nothing_and_says_so():
    memory = Memory.start("web", C, WAVES, now=0)
    advance(memory, fleet(), 1, paused=True)
    view = advance(memory, fleet(), 1000, paused=True)
    assert memory.released.keys() == {1}
    assert view.state == "paused"
    answer = gate(view, memory, fleet()[0], 1000, current=True)
    assert answer.decision == "hold"
    assert "paused" in answer.reason
    advance(memory, fleet(), 1001, paused=False)
    assert 2 in memory.released


def test_max_concurrent_hands_out_slots_and_frees_them_when_a_cluster_is_ready():
    waves = (WaveSpec("all", max_concurrent=1),)
    members = [member(f"s{i}", 1, "Pending", holding=True) for i in range(3)]
    memory = Memory.start("web", C, waves, now=0)
    view = advance(memory, members, 1, paused=False)
    first = gate(view, memory, members[0], 1, current=True)
    assert first.decision == "go"
    assert first.grant
    memory.grants["s0"] = 1
    second = gate(view, memory, members[1], 1, current=True)
    assert second.decision == "hold"
    assert "slot" in second.reason
    members[0] = member("s0", 1, "InProgress")
    view = advance(memory, members, 2, paused=False)
    assert gate(view, memory, members[1], 2, current=True).decision == "hold"
    members[0] = member("s0", 1, "Ready")
    view = advance(memory, members, 3, paused=False)
    assert gate(view, memory, members[1], 3, current=True).decision == "go"


def test_a_superseded_commit_is_frozen_where_it_was_released():
    memory = Memory.start("web", OLD, WAVES, now=0)
    memory.released[2] = 50
    view = advance(memory, fleet(), 100, paused=True)
    assert gate(view, memory, member("sto-1", 2, "Pending"), 100, current=False).decision == "go"
    answer = gate(view, memory, member("oth-1", 3, "Pending"), 100, current=False)
    assert answer.decision == "hold"
    assert "newer commit" in answer.reason


def test_amounts():
    assert amount("50%", 3) == 1
    assert amount("100%", 7) == 7
    assert amount(2, 100) == 2
    assert amount(None, 5) is None


def test_memory_survives_json():
    memory = Memory.start("web", C, WAVES, now=0)
    advance(memory, fleet(), 100, paused=False)
    memory.grants["x"] = 4.0
    assert Memory.from_json(memory.to_json()) == memory


_STATES = st.sampled_from(["Ready", "InProgress", "Failed", "Pending", "Degraded"])


@st.composite
def histories(draw: st.DrawFn) -> list[list[Member]]:
    names = [f"k{i}" for i in range(draw(st.integers(1, 6)))]
    waves = {name: draw(st.integers(1, 3)) for name in names}
    steps = []
    for _ in range(draw(st.integers(1, 12))):
        steps.append(
            [
                member(
                    name,
                    waves[name],
                    draw(_STATES),
                    commit=draw(st.sampled_from([C, OLD])),
                    holding=draw(st.booleans()),
                    online=draw(st.booleans()),
                )
                for name in names
            ]
        )
    return steps


@settings(max_examples=200, deadline=None)
@given(histories(), st.lists(st.booleans(), min_size=12, max_size=12), st.integers(0, 400))
def test_released_waves_are_a_growing_prefix_and_a_halt_is_final(steps, pauses, step_seconds):
    memory = Memory.start("web", C, WAVES, now=0)
    released_before: set[int] = {1}
    halted = False
    for number, (members, paused) in enumerate(zip(steps, pauses, strict=False), start=1):
        view = advance(memory, members, number * step_seconds, paused=paused)
        released = set(memory.released)
        assert released == set(range(1, len(released) + 1))  # a prefix: no wave skips one
        assert released >= released_before  # never taken back
        if halted or paused:
            assert released == released_before  # nothing new while halted or paused
        for index in released - released_before:
            previous = view.waves[index - 2]
            assert previous.released_at is not None
        # a hold for a cluster whose wave is not released, a go never beyond the released waves
        for m in members:
            answer = gate(view, memory, m, number * step_seconds, current=True)
            if answer.decision == "go":
                assert min(m.wave, 3) in memory.released
                assert memory.halted_at is None
                assert not paused
        halted = memory.halted_at is not None
        released_before = released


def test_failed_clusters_never_count_as_offline_and_offline_never_as_failed():
    memory = Memory.start("web", C, WAVES, now=0)
    members = [member("a", 1, "Failed", online=False), member("b", 1, "Ready", commit=OLD, online=False)]
    view = advance(memory, members, 1, paused=False)
    assert dataclasses.asdict(view.waves[0])["counts"] == {
        "ready": 0,
        "in_progress": 0,
        "failed": 1,
        "offline": 1,
        "not_yet": 0,
    }


def test_clusters_the_repo_puts_in_a_wave_but_the_hub_never_heard_from_hold_it_until_the_deadline():
    waves = (WaveSpec("canary", size=2, deadline_seconds=600), WaveSpec("rest", size=1))
    memory = Memory.start("web", C, waves, now=0)
    members = [member("can-1", 1), member("oth-1", 2, "Pending", holding=True)]
    view = advance(memory, members, 1, paused=False)
    assert view.waves[0].counts["not_yet"] == 1
    assert view.waves[0].size == 2
    advance(memory, members, 599, paused=False)
    assert 2 not in memory.released
    advance(memory, members, 600, paused=False)
    assert 2 in memory.released


def test_a_cluster_that_asked_counts_as_waiting_before_its_first_report():
    memory = Memory.start("web", C, WAVES, now=0)
    memory.asked["can-1"] = 1
    view = advance(memory, [member("sto-1", 2, "Pending", holding=True)], 10_000, paused=False)
    assert [(c.cluster, c.detail) for c in view.waves[0].clusters] == [("can-1", "waiting")]
    assert 2 not in memory.released
