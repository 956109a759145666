"""The hub's rollout book: the remembered rollouts, kept current from reports and gate questions.

Holds one :class:`hub.rollout_model.Memory` per (bundle, commit), loaded from and saved to
the store (``hub.database``); on a database that replicas share, a rollout is re-read before each
gate answer and page, so a wave released or a halt on one replica holds on all. One lock
serialises the (short, pure) computations. Members come from the clusters' current summaries;
the asking cluster's own facts (from its gate request) stand in for its last report, which may
not have reached the hub yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol

import structlog

from hub import rollouts
from hub.database import Database
from hub.rollout_model import Member, Memory, RolloutView, WaveSpec

log = structlog.get_logger("hub")

MAX_ROLLOUTS = 10_000  # remembered (bundle, commit) pairs: a bound on what cluster tokens can create
SAVE_SECONDS = 1.0  # a memory whose waves did not move is written at most this often
DEFAULT_VIEW_SECONDS = 1.0  # how long one evaluation of a rollout answers (``--rollout-view-seconds``)


class Members(Protocol):
    """What the book asks of the fleet (:class:`hub.rollout_index.RolloutIndex`, kept at commit time)."""

    def members(self, bundle: str) -> list[Member]: ...

    def reported(self) -> list[tuple[str, str, Mapping[str, Any]]]: ...


class RolloutBook:
    """``view_seconds``: how long one evaluation of a rollout (O(its members)) answers the gate
    questions that follow (0: every question evaluates it afresh, as the tests want). At 100,000
    clusters asking each pass, a gate then costs the asking cluster's bundles, not the fleet."""

    def __init__(self, database: Database, view_seconds: float = 0.0) -> None:
        self._conn = database.connect()
        self._lock = threading.Lock()
        self._view_seconds = view_seconds
        self._views: dict[tuple[str, str], tuple[float, bool, RolloutView]] = {}  # (at, held, view)
        self._saved_at: dict[tuple[str, str], tuple[float, Any]] = {}  # when written, what moved then
        self._pauses: dict[str, tuple[float, str]] = {}
        self._saved: dict[tuple[str, str], dict[str, Any]] = {}
        self._memories: dict[tuple[str, str], Memory] = {
            (m.bundle, m.commit): m for m in self._conn.load_rollouts()
        }

    def answer(
        self,
        cluster: str,
        commit: str,
        facts: Mapping[str, Mapping[str, Any]],
        fleet: Members,
        now: float,
    ) -> dict[str, dict[str, Any]]:
        """The gates of ``cluster`` (and only its own) for the bundles it asks about: the cost is
        those bundles' members, never the fleet's size."""
        gates: dict[str, dict[str, Any]] = {}
        with self._lock:
            paused = self._read_pauses()
            self._track_reported(fleet, now)
            for bundle, own in facts.items():
                memory = self._fresh(bundle, commit)
                refusal = self._refusal(memory, own)
                if refusal:
                    log.warning("rollout_not_started", cluster=cluster, bundle=bundle, reason=refusal)
                    wave = own["wave_name"]
                    reason = f"waiting for wave {wave}: {refusal}"
                    gates[bundle] = {"commit": commit, "decision": "hold", "wave": wave, "reason": reason}
                    continue
                if memory is None:
                    memory = self._start(bundle, commit, own, now)
                me = Member(
                    cluster, int(own["wave"]), commit, "Pending", holding=True, failed=bool(own["failed"])
                )
                current = self._is_current(memory)
                held = bundle in paused or bool(own["paused"]) or not current
                view = self._picture(
                    memory,
                    lambda: [m for m in fleet.members(bundle) if m.cluster != cluster] + [me],  # noqa: B023
                    now,
                    held=held,
                    failed=me.failed,
                )
                answer = rollouts.gate(view, memory, me, now, current=current)
                memory.asked[cluster] = me.wave
                if answer.grant:
                    memory.grants[cluster] = now
                self._save(memory)
                wave = view.waves[min(me.wave, len(view.waves)) - 1].name
                gates[bundle] = {
                    "commit": commit,
                    "decision": answer.decision,
                    "wave": wave,
                    "reason": answer.reason,
                }
                released = self._released_before(memory, me.wave) if answer.decision == "hold" else None
                if released is not None:
                    gates[bundle]["released"] = {"commit": released}
        return gates

    def pictures(self, fleet: Members, now: float) -> list[RolloutView]:
        """The newest rollout of every bundle, active ones first."""
        with self._lock:
            if self._conn.shared:
                for stored in self._conn.load_rollouts():
                    self._adopt(stored)
            paused = self._read_pauses()
            self._track_reported(fleet, now)
            newest: dict[str, Memory] = {}
            for memory in self._memories.values():
                if memory.bundle not in newest or memory.first_seen > newest[memory.bundle].first_seen:
                    newest[memory.bundle] = memory
            pictures = [
                self._picture(m, partial(fleet.members, m.bundle), now, held=m.bundle in paused)
                for m in newest.values()
            ]
            for memory in newest.values():
                self._save(memory)
        return sorted(pictures, key=lambda p: (not p.active, p.bundle))

    def _picture(
        self,
        memory: Memory,
        members: Callable[[], Sequence[Member]],
        now: float,
        *,
        held: bool,
        failed: bool = False,
    ) -> RolloutView:
        """The rollout evaluated now from ``members()``, or its recent evaluation (see ``view_seconds``)."""
        view = self._recent_view(memory, held, failed=failed)
        if view is None:
            view = self._advance(memory, members(), now, paused=held)
            self._views[(memory.bundle, memory.commit)] = (time.monotonic(), held, view)
        return view

    def _recent_view(self, memory: Memory, held: bool, *, failed: bool) -> RolloutView | None:
        """The rollout's last evaluation if it is recent enough to answer with (never for a cluster
        saying it failed: that may halt the rollout, so it is evaluated at once)."""
        found = self._views.get((memory.bundle, memory.commit))
        if found is None or failed or self._view_seconds <= 0:
            return None
        at, was_held, view = found
        if was_held != held or time.monotonic() - at >= self._view_seconds:
            return None
        return view

    def _advance(self, memory: Memory, members: Sequence[Member], now: float, *, paused: bool) -> RolloutView:
        before = set(memory.released), memory.halted_at
        view = rollouts.advance(memory, members, now, paused=paused)
        for index in sorted(set(memory.released) - before[0]):
            log.info(
                "rollout_wave_released",
                bundle=memory.bundle,
                commit=memory.commit[:12],
                wave=memory.waves[index - 1].name,
            )
        if memory.halted_at is not None and before[1] is None:
            log.warning(
                "rollout_halted",
                bundle=memory.bundle,
                commit=memory.commit[:12],
                wave=memory.waves[(memory.halted_wave or 1) - 1].name,
                failing=[c.cluster for c in view.failing],
            )
        return view

    def _start(self, bundle: str, commit: str, facts: Mapping[str, Any], now: float) -> Memory:
        """A new rollout, ordered after every one the hub already knows of for the bundle."""
        known = [m.first_seen for m in self._memories.values() if m.bundle == bundle]
        first_seen = max([now, *(seen + 0.001 for seen in known)])
        memory = Memory.start(bundle, commit, [WaveSpec.from_json(w) for w in facts["waves"]], first_seen)
        self._memories[(bundle, commit)] = memory
        log.info("rollout_started", bundle=bundle, commit=commit[:12], waves=len(memory.waves))
        return memory

    def _track_reported(self, fleet: Members, now: float) -> None:
        """A commit that fresh clusters report without ever asking (a no-op for each, like a revert)
        is a rollout too: the newest, so the picture does not keep showing the one it replaced."""
        for bundle, commit, facts in fleet.reported():
            if (bundle, commit) not in self._memories and len(self._memories) < MAX_ROLLOUTS:
                self._start(bundle, commit, facts, now)

    def _fresh(self, bundle: str, commit: str) -> Memory | None:
        """The remembered rollout; on a shared database as another replica may have moved it on
        (released a wave, halted, granted) a moment ago."""
        if self._conn.shared:
            stored = self._conn.load_rollout(bundle, commit)
            if stored is not None:
                self._adopt(stored)
        return self._memories.get((bundle, commit))

    def _adopt(self, stored: Memory) -> None:
        key = (stored.bundle, stored.commit)
        self._memories[key] = stored
        self._saved[key] = stored.to_json()

    def _save(self, memory: Memory) -> None:
        """Write the memory when it changed since it was last written (page views change nothing):
        at once when a wave was released or the rollout halted, else (one hub on SQLite) at most
        every SAVE_SECONDS (its bake clocks and askers grow with the fleet: comparing them on every
        question would cost the fleet's size)."""
        key = (memory.bundle, memory.commit)
        moved = (tuple(sorted(memory.released)), memory.halted_at)
        last = self._saved_at.get(key)
        recent = last is not None and last[1] == moved and time.monotonic() - last[0] < SAVE_SECONDS
        if recent and not self._conn.shared:  # replicas re-read it from the database: never delayed
            return
        self._saved_at[key] = (time.monotonic(), moved)
        data = memory.to_json()
        if self._saved.get(key) != data:
            self._conn.save_rollout(memory)
            self._saved[key] = data

    def _refusal(self, memory: Memory | None, own: Mapping[str, Any]) -> str | None:
        """Why a gate request may not start a rollout of a commit the hub has not seen, if it may not."""
        if memory is not None:
            return None
        if len(self._memories) >= MAX_ROLLOUTS:
            return f"the hub already tracks {MAX_ROLLOUTS} rollouts"
        if not own["fresh"]:
            return "this cluster's fleet repo copy is not current, and no rollout of its commit is known"
        return None

    def _read_pauses(self) -> dict[str, tuple[float, str]]:
        """The pauses set by ``flotilla-hub rollout pause``; each change is logged once by the hub."""
        paused = self._conn.rollout_pauses()
        for bundle in paused.keys() - self._pauses.keys():
            log.warning("rollout_pause_in_effect", bundle=bundle, by=paused[bundle][1])
        for bundle in self._pauses.keys() - paused.keys():
            log.warning("rollout_resume_in_effect", bundle=bundle)
        self._pauses = paused
        return paused

    def _released_before(self, memory: Memory, wave: int) -> str | None:
        """The newest older commit of the bundle whose rollout released ``wave`` and did not halt:
        the revision a cluster of that wave held at ``memory``'s commit should run meanwhile."""
        older = [
            m
            for m in self._memories.values()
            if m.bundle == memory.bundle
            and m.first_seen < memory.first_seen
            and m.halted_at is None
            and min(max(wave, 1), len(m.waves)) in m.released
        ]
        return max(older, key=lambda m: m.first_seen).commit if older else None

    def _is_current(self, memory: Memory) -> bool:
        return not any(
            other.bundle == memory.bundle and other.first_seen > memory.first_seen
            for other in self._memories.values()
        )

    def take_prune(self, cluster: str, prune_id: str) -> str | None:
        """Consume a one-shot prune allowance for ``cluster`` (hub.prune_allowances); who gave it."""
        with self._lock:
            actor = self._conn.take_prune(cluster, prune_id)
        if actor is not None:
            log.warning("prune_allowance_delivered", cluster=cluster, prune_id=prune_id, by=actor)
        return actor

    def close(self) -> None:
        self._conn.close()
