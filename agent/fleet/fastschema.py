"""A fast yes/no check for the subset of JSON Schema the fleet schemas use.

jsonschema explains errors well but costs about a millisecond per small file, which adds up to
seconds on a fleet of thousands of clusters. Most files are valid, so each is first checked by a
predicate compiled from the same schema; only files that fail it go through jsonschema for the
messages. The schema stays the single source of truth; an unsupported keyword fails loudly at
compile time instead of being silently skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]
_REMEMBERED = 10_000

_ANNOTATIONS = {"$schema", "$id", "title", "description", "x-hint", "$comment", "default", "examples"}
_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "null": lambda value: value is None,
}


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """A predicate equivalent to ``jsonschema.Draft202012Validator(schema).is_valid`` for the subset."""
    checks = [
        _keyword(keyword, value, schema) for keyword, value in schema.items() if keyword not in _ANNOTATIONS
    ]
    active = tuple(check for check in checks if check is not None)
    if len(active) == 1:
        return active[0]

    def check_all(instance: Any) -> bool:  # a plain loop: several times faster than all(genexpr)
        for check in active:  # noqa: SIM110 - on the hot path of every file
            if not check(instance):
                return False
        return True

    return check_all


def _keyword(keyword: str, value: Any, schema: Mapping[str, Any]) -> Check | None:
    if keyword == "type":
        return _TYPES[value]
    if keyword == "const":
        return lambda instance: _json_equal(instance, value)
    if keyword == "enum":
        return lambda instance: any(_json_equal(instance, option) for option in value)
    if keyword == "pattern":
        return _pattern(re.compile(value))
    if keyword in ("minLength", "maxLength"):
        low, high = (value, None) if keyword == "minLength" else (None, value)
        return lambda instance: not isinstance(instance, str) or _within(len(instance), low, high)
    if keyword in ("minimum", "maximum"):
        low, high = (value, None) if keyword == "minimum" else (None, value)
        return lambda instance: not _TYPES["number"](instance) or _within(instance, low, high)
    if keyword == "required":
        return lambda instance: not isinstance(instance, dict) or all(key in instance for key in value)
    if keyword == "items":
        return _each(list, compile_schema(value), lambda instance: instance)
    if keyword == "propertyNames":
        return _each(dict, compile_schema(value), lambda instance: instance.keys())
    if keyword == "properties":
        properties = {key: compile_schema(sub) for key, sub in value.items()}

        def check_properties(instance: Any) -> bool:
            if type(instance) is not dict:
                return True
            for key, item in instance.items():
                check = properties.get(key)
                if check is not None and not check(item):
                    return False
            return True

        return check_properties
    if keyword == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = compile_schema(value) if isinstance(value, dict) else (lambda _: bool(value))

        def check_additional(instance: Any) -> bool:
            if type(instance) is not dict:
                return True
            for key, item in instance.items():  # noqa: SIM110 - hot path
                if key not in known and not extra(item):
                    return False
            return True

        return check_additional
    raise ValueError(f"JSON Schema keyword {keyword!r} is not supported by the fast check")


def _pattern(regex: re.Pattern[str]) -> Check:
    """A pattern check that remembers its answers: label keys and values recur in every file."""
    seen: dict[str, bool] = {}

    def check_pattern(instance: Any) -> bool:
        if not isinstance(instance, str):
            return True
        answer = seen.get(instance)
        if answer is None:
            answer = regex.search(instance) is not None
            if len(seen) < _REMEMBERED:
                seen[instance] = answer
        return answer

    return check_pattern


def _each(kind: type, check: Check, members: Callable[[Any], Any]) -> Check:
    """``check`` holds for every member of an instance of ``kind`` (other instances pass)."""

    def check_each(instance: Any) -> bool:
        if type(instance) is not kind:
            return True
        for member in members(instance):  # noqa: SIM110 - hot path
            if not check(member):
                return False
        return True

    return check_each


def _within(number: float, low: float | None, high: float | None) -> bool:
    return (low is None or number >= low) and (high is None or number <= high)


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: true is not 1, unlike Python's."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)
