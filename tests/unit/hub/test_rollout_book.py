"""The rollout book answers gate questions from one evaluation per rollout and second, without
letting more clusters than ``max_concurrent`` apply, and evaluates at once for a failed cluster."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from hub import rollouts
from hub.database import Database
from hub.rollout_book import RolloutBook
from hub.rollout_model import Member, RolloutView

C = "c" * 40
WAVES = [{"name": "all", "max_failed": 0, "max_concurrent": 3, "bake_seconds": 0, "deadline_seconds": 600}]


def facts(*, failed: bool = False) -> dict[str, Any]:
    return {
        "commit": C,
        "wave": 1,
        "wave_name": "all",
        "waves": WAVES,
        "paused": False,
        "holding": True,
        "failed": failed,
        "fresh": True,
    }


class Fleet:
    """The members the read model would hold: every cluster Pending at the commit, holding."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def members(self, bundle: str) -> list[Member]:
        return [Member(name, 1, C, "Pending", holding=True) for name in self.names]

    def reported(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        return []


@pytest.mark.parametrize("view_seconds", [0.0, 60.0])
def test_at_most_max_concurrent_go_whether_or_not_the_evaluation_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, view_seconds: float
) -> None:
    evaluations = 0
    real = rollouts.advance

    def counted(*args: Any, **kwargs: Any) -> RolloutView:
        nonlocal evaluations
        evaluations += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(rollouts, "advance", counted)
    book = RolloutBook(Database(data_dir=tmp_path), view_seconds=view_seconds)
    fleet = Fleet([f"edge-{i}" for i in range(50)])
    decisions = [
        book.answer(name, C, {"web": facts()}, fleet, 1_800_000_000.0)["web"]["decision"]
        for name in fleet.names
    ]
    assert decisions.count("go") == 3  # the wave's concurrency limit, also from a reused picture
    assert decisions[:3] == ["go", "go", "go"]
    assert evaluations == (50 if view_seconds == 0 else 1)
    failed = book.answer("edge-7", C, {"web": facts(failed=True)}, fleet, 1_800_000_001.0)["web"]
    assert evaluations == (51 if view_seconds == 0 else 2)  # a failure is never answered from the past
    assert failed["decision"] == "hold"
    assert "halted" in failed["reason"]
    book.close()
