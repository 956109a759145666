"""The wire format of staged rollouts: the ``rollout`` part of a report and the gate request.

Standard library only (the agent imports it through ``hub.contract``).  Everything an agent sends
is bounded here: names, counts, the number of waves and bundles, and the percentages.

A report's ``rollout``::

    {"bundles": {"<bundle>": FACTS, ...},
     "brake": null | {"releases": ["ns/name", ...], "prune_id": "<cluster>:<hash>", "owned": 3,
                      "reason": "...", "how_to_confirm": "..."}}

FACTS (one cluster's place in one bundle's rollout, as its agent read the fleet repo)::

    {"commit": "<fleet commit>", "wave": 2, "wave_name": "stores", "paused": false,
     "holding": true, "failed": false, "error": "<the bundle's message when it failed>",
     "fresh": true,   # gate requests: the agent's checkout is the remote's current commit
     "waves": [{"name": "canary", "max_concurrent": 1 | "25%" | null, "max_failed": 0 | "10%",
                "bake_seconds": 60, "deadline_seconds": 3600, "size": 12}, ...]}

``size`` is how many clusters the bundle targets in that wave (the agent counts them in the repo), so
that clusters the hub has never heard from still count, as "not yet".

The gate request (``POST /api/v1/rollout/gates``): ``{"cluster": ..., "commit": ..., "bundles":
{"<bundle>": FACTS}}``; the answer: ``{"cluster": ..., "gates": {"<bundle>": {"commit": ...,
"decision": "go" | "hold", "wave": "...", "reason": "..."}}}``.

Optional answer fields (added later; an agent that does not know them ignores them, and an agent
must not rely on a hub sending them):

- ``"released": {"commit": "<older fleet commit>"}`` on a "hold": the newest older commit whose
  rollout released the asking cluster's wave and did not halt.  A held cluster runs that revision
  of the bundle meanwhile (it steps back or catches up to it), never the held one.
- ``"prune": {"prune_id": "<cluster>:<hash>", "allowed": true}``: the answer to an optional
  ``"prune_id"`` in the request (a prune the deletion brake refused on the asking cluster), present
  only when an operator allowed that prune with ``flotilla-hub rollout allow-prune``.  The allowance
  is consumed by this answer: it lets that one set of deletions through once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MAX_WAVES = 21  # 20 declared + the implicit last one
MAX_BUNDLES = 500
MAX_GATE_BUNDLES = 50
MAX_BRAKE_RELEASES = 500
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_PERCENT = re.compile(r"^(100|[1-9]?[0-9])%$")


class RolloutContractError(ValueError):
    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(f"{field_path}: {message}")
        self.field_path = field_path
        self.message = message


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RolloutContractError(path, "must be an object")
    return value


def _text(value: Any, path: str, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise RolloutContractError(path, f"must be a string of at most {limit} characters")
    return value


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RolloutContractError(path, "must be a DNS-1123 name")
    return value


def _int(value: Any, path: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise RolloutContractError(path, f"must be an integer between {low} and {high}")
    return value


def _bool(value: Any, path: str) -> bool:
    if type(value) is not bool:
        raise RolloutContractError(path, "must be true or false")
    return value


def _amount(value: Any, path: str, *, optional: bool) -> int | str | None:
    if value is None and optional:
        return None
    if type(value) is int and 0 <= value <= 1_000_000:
        return value
    if isinstance(value, str) and _PERCENT.match(value):
        return value
    raise RolloutContractError(path, "must be a whole number or a percentage like '25%'")


def _wave(raw: Any, path: str) -> dict[str, Any]:
    obj = _obj(raw, path)
    return {
        "name": _name(obj.get("name"), f"{path}.name"),
        "max_concurrent": _amount(obj.get("max_concurrent"), f"{path}.max_concurrent", optional=True),
        "max_failed": _amount(obj.get("max_failed", 0), f"{path}.max_failed", optional=False),
        "bake_seconds": _int(obj.get("bake_seconds", 0), f"{path}.bake_seconds", 0, 2_592_000),
        "deadline_seconds": _int(
            obj.get("deadline_seconds", 3600), f"{path}.deadline_seconds", 1, 31_536_000
        ),
        "size": None if obj.get("size") is None else _int(obj["size"], f"{path}.size", 0, 1_000_000),
    }


def parse_facts(raw: Any, path: str) -> dict[str, Any]:
    obj = _obj(raw, path)
    waves = obj.get("waves")
    if not isinstance(waves, list) or not 1 <= len(waves) <= MAX_WAVES:
        raise RolloutContractError(f"{path}.waves", f"must be a list of 1 to {MAX_WAVES} waves")
    parsed = [_wave(wave, f"{path}.waves[{i}]") for i, wave in enumerate(waves)]
    wave = _int(obj.get("wave"), f"{path}.wave", 1, len(parsed))
    return {
        "commit": _text(obj.get("commit"), f"{path}.commit", 512, optional=True),
        "wave": wave,
        "wave_name": _name(obj.get("wave_name"), f"{path}.wave_name"),
        "waves": parsed,
        "paused": _bool(obj.get("paused", False), f"{path}.paused"),
        "holding": _bool(obj.get("holding", False), f"{path}.holding"),
        "failed": _bool(obj.get("failed", False), f"{path}.failed"),
        "error": _text(obj.get("error", ""), f"{path}.error", 1024),
        "fresh": _bool(obj.get("fresh", True), f"{path}.fresh"),
    }


def _facts_map(raw: Any, path: str, limit: int) -> dict[str, dict[str, Any]]:
    obj = _obj(raw, path)
    if len(obj) > limit:
        raise RolloutContractError(path, f"must have at most {limit} bundles")
    return {_name(key, f"{path} key"): parse_facts(value, f"{path}.{key}") for key, value in obj.items()}


def _brake(raw: Any, path: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    obj = _obj(raw, path)
    releases = obj.get("releases")
    if not isinstance(releases, list) or len(releases) > MAX_BRAKE_RELEASES:
        raise RolloutContractError(f"{path}.releases", f"must be a list of at most {MAX_BRAKE_RELEASES}")
    return {
        "releases": [_text(r, f"{path}.releases[{i}]", 512) for i, r in enumerate(releases)],
        "prune_id": _text(obj.get("prune_id"), f"{path}.prune_id", 300),
        "owned": _int(obj.get("owned", 0), f"{path}.owned", 0, 1_000_000),
        "reason": _text(obj.get("reason", ""), f"{path}.reason", 1024),
        "how_to_confirm": _text(obj.get("how_to_confirm", ""), f"{path}.how_to_confirm", 1024),
    }


def parse(raw: Any, path: str = "rollout") -> dict[str, Any]:
    """A report's ``rollout`` part, validated and normalised; raises RolloutContractError."""
    obj = _obj(raw, path)
    return {
        "bundles": _facts_map(obj.get("bundles", {}), f"{path}.bundles", MAX_BUNDLES),
        "brake": _brake(obj.get("brake"), f"{path}.brake"),
    }


def parse_gate_request(raw: Any) -> dict[str, Any]:
    obj = _obj(raw, "request")
    return {
        "cluster": _text(obj.get("cluster"), "cluster", 253),
        "commit": _text(obj.get("commit"), "commit", 512),
        "bundles": _facts_map(obj.get("bundles", {}), "bundles", MAX_GATE_BUNDLES),
        "prune_id": _text(obj.get("prune_id"), "prune_id", 300, optional=True),
    }
