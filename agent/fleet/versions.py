"""Syntax check for chart versions: an exact semver or a Helm (Masterminds) semver constraint.

Resolving a range to a version needs the chart repository's index, which only the edge has; here
we only make sure Helm will be able to parse what the bundle says.
"""

from __future__ import annotations

import re

_PART = r"(?:0|[1-9]\d*|[xX*])"
_VERSION = rf"v?{_PART}(?:\.{_PART}(?:\.{_PART})?)?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_TERM = re.compile(rf"(?:=|!=|>=|<=|>|<|~>|~|\^)?\s*{_VERSION}")
_HYPHEN = re.compile(rf"{_VERSION}\s+-\s+{_VERSION}")
_EXACT = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")


def is_exact(version: str) -> bool:
    """True for one concrete version such as ``1.2.3`` or ``v1.2.3-rc.1``."""
    return _EXACT.fullmatch(version.strip()) is not None


def is_valid_constraint(constraint: str) -> bool:
    """True for an exact version or a range Helm accepts (``^1.2``, ``>=1 <2``, ``1.x``)."""
    alternatives = constraint.split("||")
    return all(_is_valid_and_group(group) for group in alternatives)


def _is_valid_and_group(group: str) -> bool:
    group = group.strip()
    if not group:
        return False
    if _HYPHEN.fullmatch(group):
        return True
    terms = re.split(r"\s*,\s*|(?<=[0-9A-Za-z*])\s+(?=[=!<>~^v\d*xX])", group)
    return all(_TERM.fullmatch(term) for term in terms)
