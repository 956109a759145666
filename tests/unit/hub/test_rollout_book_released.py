"""The hub's ``released`` commit in a hold (hub/rollout_book.py): the newest older commit whose
rollout released the asking cluster's wave and did not halt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hub.database import Database
from hub.rollout_book import RolloutBook

A, B, C = "a" * 40, "b" * 40, "c" * 40


def facts(commit: str, canary_size: int | None) -> dict[str, Any]:
    waves = [
        {"name": "canary", "max_failed": 0, "bake_seconds": 0, "deadline_seconds": 600, "size": canary_size},
        {"name": "rest", "max_failed": 0, "bake_seconds": 0, "deadline_seconds": 600, "size": 1},
    ]
    return {"commit": commit, "wave": 2, "wave_name": "rest", "waves": waves, "paused": False,
            "holding": True, "failed": False, "error": "", "fresh": True}  # fmt: skip


def test_a_held_cluster_is_told_the_newest_older_commit_released_to_its_wave_and_not_halted(tmp_path: Path):
    book = RolloutBook(Database(data_dir=tmp_path))
    try:
        # A: no canary in the repo, so wave rest is released at once and store-1 gets its go
        assert book.answer("store-1", A, {"web": facts(A, 0)}, [], 0.0)["web"]["decision"] == "go"
        held = book.answer("store-1", B, {"web": facts(B, 1)}, [], 10.0)["web"]  # B waits for its canary
        assert held["decision"] == "hold"
        assert held["released"] == {"commit": A}
        newer = book.answer("store-1", C, {"web": facts(C, 1)}, [], 20.0)["web"]
        assert newer["released"] == {"commit": A}  # B was never released to rest: A still is the one
        book._memories[("web", A)].halted_at = 30.0  # a halted rollout is nobody's released revision
        assert "released" not in book.answer("store-1", C, {"web": facts(C, 1)}, [], 40.0)["web"]
    finally:
        book.close()
