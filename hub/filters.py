"""Turning query parameters (``selector``, ``health``, ``connectivity``) into a cluster filter."""

from __future__ import annotations

import re
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


_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)  # ASCII digits only: "²".isdigit() is True, int("²") fails
MAX_OFFSET = 10**9


def _natural(
    params: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int = MAX_OFFSET
) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadQuery(name, f"must be a whole number from {minimum} to {maximum}")
    return int(raw)


def page_number(params: Mapping[str, str]) -> int:
    return _natural(params, "page", 1, minimum=1)


def window(params: Mapping[str, str], default_limit: int = 200, max_limit: int = 1000) -> tuple[int, int]:
    """(offset, limit) for paging a list: every list is paged, ``limit`` at most ``max_limit``."""
    return _natural(params, "offset", 0), _natural(params, "limit", default_limit, maximum=max_limit)


def agent_grouping(params: Mapping[str, str]) -> tuple[str, int]:
    """``by`` (a label key, ``wave``, or "" for the default) and ``apage`` of the agent-version groups."""
    by = params.get("by", "")
    if len(by) > 253:
        raise BadQuery("by", "must be a label key (at most 253 characters) or 'wave'")
    try:
        page = page_number({"page": params.get("apage", "")})
    except BadQuery as exc:
        raise BadQuery("apage", str(exc).removeprefix("page: ")) from None
    return by, page
