"""Deep merge of Helm values, with Helm's rules.

Mappings merge key by key, recursively; anything else (lists, strings, numbers) from the later
source replaces the earlier one; a ``null`` in a later source removes the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any


def merge_values(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge ``layers`` in order, later winning; the inputs are never modified."""
    result: dict[str, Any] = {}
    for layer in layers:
        _merge_into(result, layer)
    return result


def _merge_into(base: dict[str, Any], overlay: Mapping[str, Any]) -> None:
    for key, value in overlay.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        elif isinstance(value, Mapping):
            base[key] = {}
            _merge_into(base[key], value)
        else:
            base[key] = copy.deepcopy(value)


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` merged over ``base`` by the same rules; the agent uses it to apply valuesFrom."""
    return merge_values([base, overlay])
