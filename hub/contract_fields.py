"""Field readers for parsing a report: each checks one field's type and bound or raises
:class:`~hub.contract_types.ContractError` naming it.

Readers take the parent object, the key and the parent's path; the full field path is only built
when something is wrong (the hub parses every report, so the happy path is kept lean).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any, TypeVar

from hub.contract_types import MAX_INT, MAX_NAME, ContractError
from hub.wire_text import timestamp_problem

T = TypeVar("T")
MISSING: Any = object()


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def read_object(value: Any, path: str, known: frozenset[str] | None = None) -> Mapping[str, Any]:
    """``value`` as an object; with ``known``, a key outside it is an error (unknown fields are rejected)."""
    if not isinstance(value, Mapping):
        raise ContractError(path, "must be an object")
    if known is not None and not known.issuperset(value):
        unknown = sorted(str(key) for key in value if key not in known)[0]
        raise ContractError(join_path(path, unknown), "unknown field (not part of this contract version)")
    return value


def wire_keys(cls: type) -> frozenset[str]:
    """The wire keys of a contract dataclass: exactly its fields."""
    return frozenset(f.name for f in dataclass_fields(cls))


def check_str(value: Any, path: str, limit: int, allow_empty: bool = True) -> str:
    if type(value) is str and len(value) <= limit and (allow_empty or value):
        return value
    if not isinstance(value, str):
        raise ContractError(path, "must be a string")
    if len(value) > limit:
        raise ContractError(path, f"must be at most {limit} characters (got {len(value)})")
    raise ContractError(path, "must not be empty")


def read_str(obj: Mapping[str, Any], key: str, path: str, limit: int, default: Any = MISSING) -> str:
    value = obj.get(key, default)
    if type(value) is str and len(value) <= limit:
        return value
    if value is MISSING:
        raise ContractError(join_path(path, key), "is required")
    return check_str(value, join_path(path, key), limit)


def read_name(obj: Mapping[str, Any], key: str, path: str) -> str:
    value = obj.get(key, MISSING)
    if value is MISSING:
        raise ContractError(join_path(path, key), "is required")
    return check_str(value, join_path(path, key), MAX_NAME, allow_empty=False)


def read_opt_str(obj: Mapping[str, Any], key: str, path: str, limit: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    return read_str(obj, key, path, limit)


def check_int(value: Any, path: str, minimum: int = 0, maximum: int = MAX_INT) -> int:
    if type(value) is not int:
        raise ContractError(path, "must be an integer")
    if not minimum <= value <= maximum:
        raise ContractError(path, f"must be between {minimum} and {maximum}")
    return value


def read_int(obj: Mapping[str, Any], key: str, path: str, default: Any = MISSING, minimum: int = 0) -> int:
    value = obj.get(key, default)
    if type(value) is int and minimum <= value <= MAX_INT:
        return value
    if value is MISSING:
        raise ContractError(join_path(path, key), "is required")
    return check_int(value, join_path(path, key), minimum)


def read_opt_int(obj: Mapping[str, Any], key: str, path: str) -> int | None:
    return None if obj.get(key) is None else read_int(obj, key, path)


def check_timestamp(text: str, path: str) -> str:
    problem = timestamp_problem(text)
    if problem is not None:
        raise ContractError(path, problem)
    return text


def read_timestamp(obj: Mapping[str, Any], key: str, path: str, *, optional: bool = False) -> str:
    text = read_str(obj, key, path, 64, "" if optional else MISSING)
    if optional and not text:
        return text
    return check_timestamp(text, join_path(path, key))


def read_list(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    limit: int,
    item: Callable[[Any, str], T],
    optional: bool = True,
) -> list[T]:
    value = obj.get(key, [] if optional else MISSING)
    if value is MISSING:
        raise ContractError(join_path(path, key), "is required")
    if type(value) is not list:
        raise ContractError(join_path(path, key), "must be a list")
    if len(value) > limit:
        raise ContractError(join_path(path, key), f"must have at most {limit} items (got {len(value)})")
    if not value:
        return []
    list_path = join_path(path, key)
    return [item(entry, f"{list_path}[{index}]") for index, entry in enumerate(value)]
