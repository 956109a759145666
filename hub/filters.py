"""Turning query parameters (``selector``, ``health``, ``connectivity``) into a cluster filter."""

from __future__ import annotations

from collections.abc import Mapping

from hub.aggregate import ClusterFilter
from hub.connectivity import CONNECTIVITY_STATES
from hub.contract import BUNDLE_STATES
from hub.selector import SelectorError, parse_selector


class BadQuery(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


def _states(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> frozenset[str]:
    raw = params.get(name, "")
    values = frozenset(v.strip() for v in raw.split(",") if v.strip())
    unknown = sorted(values - set(allowed))
    if unknown:
        raise BadQuery(name, f"unknown value {unknown[0]!r}; expected one of {', '.join(allowed)}")
    return values


def cluster_filter(params: Mapping[str, str]) -> ClusterFilter:
    try:
        selector = parse_selector(params.get("selector", ""))
    except SelectorError as exc:
        raise BadQuery("selector", str(exc)) from None
    return ClusterFilter(
        selector=selector,
        health=_states(params, "health", BUNDLE_STATES),
        connectivity=_states(params, "connectivity", CONNECTIVITY_STATES),
    )


def page_number(params: Mapping[str, str]) -> int:
    raw = params.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        raise BadQuery("page", "must be a positive integer")
    return int(raw)


def _natural(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadQuery(name, "must be a non-negative integer")
    return int(raw)


def window(params: Mapping[str, str]) -> tuple[int, int | None]:
    """(offset, limit) for paging a list; no limit unless asked."""
    offset = _natural(params, "offset", 0)
    limit = _natural(params, "limit", -1)
    return offset, (None if limit < 0 else limit)
