"""The content digest of a desired release: sha256 over canonical JSON of what Helm will be given.

Canonical JSON (sorted keys, no whitespace, UTF-8) makes the digest independent of key order in
the YAML; including only what reaches Helm (chart, values, valuesFrom references, options,
release name and namespace) means it changes exactly when the installed release would.
``paused``, ``correctDrift`` and ``dependsOn`` steer the agent, not the release, so they are left out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from agent.fleet.model import ChartSource, HelmOptions, ValuesRef

DIGEST_VERSION = 1
"""Bumped if the digest's input ever changes shape, so old and new digests never collide."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def release_digest(
    *,
    release: str,
    namespace: str,
    chart: ChartSource,
    values: Mapping[str, Any],
    values_from: tuple[ValuesRef, ...],
    options: HelmOptions,
) -> str:
    document = {
        "digestVersion": DIGEST_VERSION,
        "release": release,
        "namespace": namespace,
        "chart": _fields(chart),
        "values": values,
        "valuesFrom": [_fields(ref) for ref in values_from],
        "options": _fields(options),
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


def _fields(flat: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` for a dataclass of plain values, without its deep-copying cost."""
    result = {field.name: getattr(flat, field.name) for field in dataclasses.fields(flat)}
    if all(value is None or isinstance(value, str | int | float) for value in result.values()):
        return result
    return dataclasses.asdict(flat)
