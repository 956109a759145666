"""Label selectors for filtering clusters: ``region=eu,tier!=prod,gpu,!legacy``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_KEY = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$")


class SelectorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "=":
            return labels.get(self.key) == self.value
        if self.operator == "!=":
            return labels.get(self.key) != self.value
        if self.operator == "exists":
            return self.key in labels
        return self.key not in labels


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)


def parse_selector(text: str) -> Selector:
    """Parse a comma-separated selector; raise :class:`SelectorError` naming the bad term."""
    requirements = []
    for raw_term in text.split(","):
        term = raw_term.strip()
        if not term:
            continue
        requirements.append(_parse_term(term))
    return Selector(tuple(requirements))


def _parse_term(term: str) -> Requirement:
    for operator in ("!=", "==", "="):
        if operator in term:
            key, value = (part.strip() for part in term.split(operator, 1))
            _check_key(key, term)
            return Requirement(key, "!=" if operator == "!=" else "=", value)
    if term.startswith("!"):
        key = term[1:].strip()
        _check_key(key, term)
        return Requirement(key, "!exists")
    _check_key(term, term)
    return Requirement(term, "exists")


def _check_key(key: str, term: str) -> None:
    if not _KEY.match(key):
        raise SelectorError(f"invalid label key in selector term {term!r}")
