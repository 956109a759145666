"""The agent's side of rollout gates (agent/gates.py) and the deletion brake (agent/brake.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from agent import brake
from agent.fleet.model import WavePosition
from agent.fleet.rollout import DeletionBrake, RolloutSpec, Wave
from agent.gates import Gate, Gates, decide, wave_facts
from hub.rollout_contract import parse_facts

C, D = "c" * 40, "d" * 64
SPEC = RolloutSpec((Wave("canary", cluster_names=("a",)),))
WAVE = WavePosition(index=1, name="canary", count=2, spec=SPEC)


class Desired:
    """The two fields of a DesiredRelease the gate looks at."""

    def __init__(self, wave: WavePosition = WAVE, bundle: str = "web") -> None:
        self.wave, self.bundle = wave, bundle


def test_without_an_answer_a_staged_change_holds_and_says_why():
    gate = decide(wave=WAVE, commit=C, digest=D, cached=None, answer=None)
    assert gate == Gate(False, "waiting for wave canary: the hub could not be asked")


def test_a_hold_carries_the_hubs_reason():
    answer = {"commit": C, "decision": "hold", "reason": "waiting for wave canary (baking): 0 of 1 Ready"}
    assert decide(wave=WAVE, commit=C, digest=D, cached=None, answer=answer).reason.startswith(
        "waiting for wave canary"
    )


def test_an_answer_for_another_commit_is_not_a_go():
    answer = {"commit": "e" * 40, "decision": "go"}
    assert not decide(wave=WAVE, commit=C, digest=D, cached=None, answer=answer).go


def test_paused_in_the_repo_holds_even_with_a_go():
    paused = dataclasses.replace(WAVE, spec=dataclasses.replace(SPEC, paused=True))
    cached = {"decision": "go", "commit": C, "digest": D}
    gate = decide(wave=paused, commit=C, digest=D, cached=cached, answer={"commit": C, "decision": "go"})
    assert not gate.go
    assert "paused in the fleet repo" in gate.reason


def test_a_go_is_kept_on_disk_and_used_without_the_hub_but_only_for_the_same_commit_and_digest(
    tmp_path: Path,
):
    asked: list[Mapping[str, Any]] = []

    def ask(request: Mapping[str, Any]) -> Mapping[str, Any]:
        asked.append(request)
        return {"gates": {"web": {"commit": C, "decision": "go", "reason": "wave canary released"}}}

    assert Gates("a", tmp_path, ask).check(Desired(), C, D).go  # type: ignore[arg-type]
    assert asked[0]["cluster"] == "a"
    assert asked[0]["bundles"]["web"]["wave"] == 1
    offline = Gates("a", tmp_path, None)  # a restart with the hub gone
    assert offline.check(Desired(), C, D).go  # type: ignore[arg-type]
    assert not offline.check(Desired(), C, "f" * 64).go  # type: ignore[arg-type]
    assert not offline.check(Desired(), "e" * 40, D).go  # type: ignore[arg-type]


def test_a_failed_apply_withdraws_the_go_and_is_remembered_for_that_commit(tmp_path: Path):
    def ask(request: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"gates": {"web": {"commit": C, "decision": "go"}}}

    gates = Gates("a", tmp_path, ask)
    assert gates.check(Desired(), C, D).go  # type: ignore[arg-type]
    gates.failed("web", C)
    again = Gates("a", tmp_path, None)
    assert again.has_failed("web", C)
    assert not again.has_failed("web", "e" * 40)
    assert not again.check(Desired(), C, D).go  # type: ignore[arg-type]


def test_the_hub_being_down_gives_a_hold_that_names_the_last_answer(tmp_path: Path):
    answers = iter([{"gates": {"web": {"commit": C, "decision": "hold", "reason": "slot"}}}, None])
    gates = Gates("a", tmp_path, lambda request: next(answers))
    assert not gates.check(Desired(), C, D).go  # type: ignore[arg-type]
    gate = gates.check(Desired(), C, D)  # type: ignore[arg-type]
    assert not gate.go
    assert "could not be asked" in gate.reason
    assert "slot" in gate.reason


def test_the_facts_an_agent_sends_parse_under_the_contract():
    facts = wave_facts(WAVE, C, holding=True, failed=False)
    parsed = parse_facts(facts, "facts")
    assert parsed["wave"] == 1
    assert [w["name"] for w in parsed["waves"]] == ["canary", "rest"]


# --- deletion brake -------------------------------------------------------------------------------


def releases(count: int) -> list[str]:
    return [f"ns/r{i}" for i in range(count)]


def test_removing_one_release_is_never_a_mass_deletion():
    assert brake.check("a", ["ns/only"], 1, DeletionBrake()) is None


def test_removing_every_release_of_a_cluster_is_refused_with_how_to_confirm():
    refusal = brake.check("a", releases(3), 3, DeletionBrake())
    assert refusal is not None
    assert refusal.releases == tuple(sorted(releases(3)))
    assert "more than 50%" in refusal.reason
    assert f"'{refusal.prune_id}'" in refusal.how_to_confirm
    assert "fleet.yaml" in refusal.how_to_confirm


def test_a_confirmation_lets_through_exactly_that_set_of_deletions():
    refusal = brake.check("a", releases(3), 3, DeletionBrake())
    assert refusal is not None
    confirmed = DeletionBrake(confirmed=frozenset({refusal.prune_id}))
    assert brake.check("a", releases(3), 3, confirmed) is None
    assert brake.check("a", releases(4), 4, confirmed) is not None  # another list needs its own
    assert brake.check("b", releases(3), 3, confirmed) is not None  # and another cluster too


def test_more_than_max_releases_is_refused_whatever_the_share():
    assert brake.check("a", releases(11), 1000, DeletionBrake()) is not None
    assert brake.check("a", releases(10), 1000, DeletionBrake()) is None


@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 20), st.integers(0, 100))
def test_the_brake_holds_exactly_when_a_threshold_is_crossed(count, extra, max_releases, max_percent):
    owned = count + extra
    settings = DeletionBrake(max_releases=max_releases, max_percent=max_percent)
    refused = brake.check("a", releases(count), owned, settings) is not None
    crossed = count > max_releases or (count > 1 and count * 100 > max_percent * max(owned, 1))
    assert refused == (count > 0 and crossed)


# --- maintenance windows in the pass -----------------------------------------------------------------


def test_outside_its_maintenance_window_a_cluster_holds_every_change_even_a_released_one(tmp_path: Path):
    from datetime import datetime

    from agent.actions import Action
    from agent.fleet.windows import Window, parse_cron
    from agent.reconcile_release import _gate

    nightly = Window("nightly", parse_cron("0 2 * * *"), 60, "UTC")
    gates = Gates("a", tmp_path, lambda request: {"gates": {"web": {"commit": C, "decision": "go"}}})

    class Context:
        maintenance = (nightly,)
        gates = None

        def __init__(self, when: str, gates: Gates) -> None:
            self.gates = gates  # type: ignore[assignment]
            self.clock = lambda: datetime.fromisoformat(when).timestamp()

    staged, unstaged = Desired(), Desired(wave=None)  # type: ignore[arg-type]
    day, night = Context("2026-12-01T12:00:00+00:00", gates), Context("2026-12-01T02:30:00+00:00", gates)
    for desired in (staged, unstaged):
        held = _gate(day, desired, Action.UPGRADE, C, D)  # type: ignore[arg-type]
        assert held == Gate(False, "waiting for a maintenance window (nightly)")
    assert _gate(night, staged, Action.UPGRADE, C, D) == Gate(True, "released")  # type: ignore[arg-type]
    assert _gate(night, unstaged, Action.UPGRADE, C, D) is None  # type: ignore[arg-type]
    assert _gate(day, staged, Action.UNCHANGED, C, D) is None  # type: ignore[arg-type]  # nothing to apply
