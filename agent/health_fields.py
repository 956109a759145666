"""Readers of a live object's status fields for :mod:`agent.health`: each returns the field or
raises :class:`Malformed` when it has a type the API would never send (the health is then Unknown).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


class Malformed(ValueError):
    """A status field has a type the API would never send: the object's health is Unknown."""


def as_mapping(value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Malformed(f"expected an object, got {type(value).__name__}")
    return value


def int_field(container: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = container.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{key} is {value!r}, not an integer")
    return value


def conditions_by_type(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    raw = status.get("conditions") or []
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise Malformed("conditions is not a list")
    return {str(c.get("type")): c for c in raw if isinstance(c, Mapping)}


def is_true(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "True"


def is_false(condition: Mapping[str, Any] | None) -> bool:
    return condition is not None and condition.get("status") == "False"


def explain(condition: Mapping[str, Any]) -> str:
    reason = str(condition.get("reason") or condition.get("type") or "")
    text = str(condition.get("message") or "").strip()
    return f"{reason}: {text}" if text and reason else text or reason


def v1_hpa_conditions(metadata: Mapping[str, Any], status: Mapping[str, Any]) -> Mapping[str, Any]:
    """autoscaling/v1 carries an HPA's conditions as JSON in an annotation."""
    raw = as_mapping(metadata.get("annotations")).get("autoscaling.alpha.kubernetes.io/conditions")
    if not isinstance(raw, str):
        return status
    try:
        conditions = json.loads(raw)
    except ValueError:
        raise Malformed("the autoscaling conditions annotation is not JSON") from None
    return {**status, "conditions": conditions}


def stale_generation(metadata: Mapping[str, Any], status: Mapping[str, Any]) -> str | None:
    if "observedGeneration" not in status or "generation" not in metadata:
        return None
    generation = int_field(metadata, "generation")
    observed = int_field(status, "observedGeneration")
    if observed < generation:
        return f"generation {generation} not yet observed by its controller (observed {observed})"
    return None
