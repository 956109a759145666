"""Whether a staged change may advance on this cluster now: the agent's side of a rollout gate.

The hub decides from every cluster's reports (``hub.rollouts``); this module asks it through the
reporter (the only module that talks to the hub), keeps the answers on disk, and turns them into a
decision.  The safety rule: without a positive answer from the hub for exactly this bundle, commit
and digest, a staged change does not advance, and what runs keeps running.  A "go" once received is
final for that (bundle, commit, digest): a restart or a hub outage after it does not stop a cluster
its wave was released for.  A failed apply withdraws the go, so a retry needs a new one (and the
hub says "hold" once the failure budget is spent).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from agent import state
from agent.fleet.model import DesiredRelease, WavePosition
from agent.fleet.windows import Window, closed_reason

log = structlog.get_logger(__name__)

GATES_FILE = "gates.json"
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
Ask = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""POSTs a gate request to the hub; the decoded answer, or None when the hub could not be asked."""


@dataclass(frozen=True)
class Gate:
    go: bool
    reason: str = ""
    released: str | None = None  # on a hold: the older commit the cluster's wave has been released for


def released_commit(answer: Mapping[str, Any] | None) -> str | None:
    """The hub's optional ``released`` commit in a "hold" answer (hub.rollout_contract), if well formed."""
    released = answer.get("released") if answer else None
    commit = released.get("commit") if isinstance(released, Mapping) else None
    return commit if isinstance(commit, str) and _SHA.match(commit) else None


def wave_facts(wave: WavePosition, commit: str | None, *, holding: bool, failed: bool) -> dict[str, Any]:
    """What the hub learns about this cluster's place in one bundle's rollout (report and gate request)."""
    return {
        "commit": commit,
        "wave": wave.index,
        "wave_name": wave.name,
        "waves": [
            {**w.to_json(), "size": size}
            for w, size in zip(wave.spec.all_waves(), wave.sizes or [None] * wave.count, strict=True)
        ],
        "paused": wave.spec.paused,
        "holding": holding,
        "failed": failed,
    }


def decide(
    *,
    wave: WavePosition,
    commit: str,
    digest: str,
    cached: Mapping[str, Any] | None,
    answer: Mapping[str, Any] | None,
) -> Gate:
    """The decision for one staged change (pure).

    ``cached`` is what the gate file holds for the bundle; ``answer`` the hub's answer this pass
    for the bundle, or None when the hub was not asked or could not be reached.
    """
    if wave.spec.paused:
        return Gate(False, f"waiting for wave {wave.name}: the rollout is paused in the fleet repo")
    if (
        cached
        and cached.get("decision") == "go"
        and (cached.get("commit"), cached.get("digest"))
        == (
            commit,
            digest,
        )
    ):
        return Gate(True, "released")
    if answer is None:
        last = f" (last answer: {cached['reason']})" if cached and cached.get("reason") else ""
        # what the hub last said this wave was released for still holds while it cannot be asked
        known = released_commit(cached) if cached and cached.get("commit") == commit else None
        return Gate(False, f"waiting for wave {wave.name}: the hub could not be asked{last}", known)
    if answer.get("commit") != commit:
        return Gate(False, f"waiting for wave {wave.name}: the hub answered for another commit")
    if answer.get("decision") == "go":
        return Gate(True, "released")
    reason = str(answer.get("reason") or "the hub says hold")[:500]
    return Gate(
        False,
        reason if reason.startswith("waiting for") else f"waiting for wave {wave.name}: {reason}",
        released_commit(answer),
    )


def gate_for(
    desired: DesiredRelease,
    commit: str | None,
    digest: str,
    *,
    gates: Gates | None,
    maintenance: Sequence[Window],
    now: datetime,
) -> Gate | None:
    """The gate for a change (install or upgrade) of ``desired``: the cluster's maintenance windows
    first, then the rollout's waves; None when the change is not gated at all."""
    closed = closed_reason(maintenance, now)
    if closed is not None:
        return Gate(False, closed)
    if desired.wave is None:
        return None
    if gates is None or not commit:
        return Gate(False, f"waiting for wave {desired.wave.name}: no hub is configured to release it")
    return gates.check(desired, commit, digest)


def facts_for(
    desired: DesiredRelease, commit: str | None, gates: Gates | None, *, holding: bool
) -> dict[str, Any] | None:
    """What the report says about this cluster's place in the bundle's rollout; None if not staged."""
    if desired.wave is None:
        return None
    failed = gates is not None and gates.has_failed(desired.bundle, commit)
    facts = wave_facts(desired.wave, commit, holding=holding, failed=failed)
    facts["fresh"] = gates is not None and gates.source_fresh
    return facts


class Gates:
    """The gate file (``gates.json`` in the state directory) and the questions to the hub."""

    def __init__(self, cluster: str, state_dir: Path, ask: Ask | None) -> None:
        self._cluster = cluster
        self._path = state_dir / GATES_FILE
        self._ask = ask
        self.source_fresh = True  # set per pass: the checkout is the remote's current commit
        raw = state.read_json(self._path)
        self._entries: dict[str, dict[str, Any]] = raw if isinstance(raw, dict) else {}

    def check(self, desired: DesiredRelease, commit: str, digest: str) -> Gate:
        """May ``desired`` (at ``digest``, fleet commit ``commit``) be applied now?"""
        assert desired.wave is not None
        cached = self._entries.get(desired.bundle)
        if desired.wave.spec.paused or (
            cached
            and (cached.get("decision"), cached.get("commit"), cached.get("digest")) == ("go", commit, digest)
        ):
            return decide(wave=desired.wave, commit=commit, digest=digest, cached=cached, answer=None)
        answer = self._query(desired, commit)
        gate = decide(wave=desired.wave, commit=commit, digest=digest, cached=cached, answer=answer)
        if answer is not None:
            self._remember(desired.bundle, commit, digest, gate)
        return gate

    def failed(self, bundle: str, commit: str) -> None:
        """The apply of a released change failed (and was rolled back): withdraw its go."""
        entry = self._entries.get(bundle)
        self._entries[bundle] = {
            "commit": commit,
            "decision": "hold",
            "reason": "the change failed here and was rolled back",
            "failed_commit": commit,
            "digest": entry.get("digest") if entry else None,
            "at": time.time(),
        }
        self._save()

    def has_failed(self, bundle: str, commit: str | None) -> bool:
        entry = self._entries.get(bundle)
        return bool(entry and commit and entry.get("failed_commit") == commit)

    def allow_prune(self, prune_id: str, commit: str | None) -> bool:
        """Has an operator allowed this refused prune on the hub (``flotilla-hub rollout allow-prune``)?
        The hub's "yes" is consumed by this answer: one set of deletions, once."""
        if self._ask is None:
            return False
        reply = self._ask(
            {"cluster": self._cluster, "commit": commit or "", "bundles": {}, "prune_id": prune_id}
        )
        prune = reply.get("prune") if reply is not None else None
        return (
            isinstance(prune, Mapping) and prune.get("prune_id") == prune_id and prune.get("allowed") is True
        )

    def _query(self, desired: DesiredRelease, commit: str) -> Mapping[str, Any] | None:
        if self._ask is None:
            return None
        assert desired.wave is not None
        facts = wave_facts(desired.wave, commit, holding=True, failed=self.has_failed(desired.bundle, commit))
        facts["fresh"] = self.source_fresh
        reply = self._ask({"cluster": self._cluster, "commit": commit, "bundles": {desired.bundle: facts}})
        if reply is None:
            return None
        gates = reply.get("gates")
        answer = gates.get(desired.bundle) if isinstance(gates, dict) else None
        return answer if isinstance(answer, dict) else None

    def _remember(self, bundle: str, commit: str, digest: str, gate: Gate) -> None:
        previous = self._entries.get(bundle) or {}
        entry: dict[str, Any] = {
            "commit": commit,
            "digest": digest,
            "decision": "go" if gate.go else "hold",
            "reason": gate.reason,
            "at": time.time(),
        }
        if previous.get("failed_commit") == commit:
            entry["failed_commit"] = commit
        if gate.released:
            entry["released"] = {"commit": gate.released}
        if {k: v for k, v in entry.items() if k != "at"} != {k: v for k, v in previous.items() if k != "at"}:
            self._entries[bundle] = entry
            self._save()
            log.info(
                "rollout_gate",
                bundle=bundle,
                commit=commit[:12],
                decision=entry["decision"],
                reason=gate.reason,
            )

    def _save(self) -> None:
        state.write_json_atomic(self._path, self._entries)
