"""Strict checks for text in the wire contract: valid Unicode, RFC 3339 timestamps, no duplicate keys.

Standard library only (the agent imports the contract). JSON lets a document carry things a
Python ``str`` holds but no UTF-8 text can: lone surrogates (``"\\ud800"``), and also
non-characters and U+0000 that break databases, terminals and pages downstream. A report carrying
any of them is rejected with the field named, before anything is stored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Lone surrogates, U+0000 and the Unicode non-characters (U+FDD0..U+FDEF and the last two code
# points of every plane).
# Astral code points go through a second, simple range test (a class listing all 34 plane ends
# makes the regular expression engine ten times slower on every character).
BAD_CHAR = re.compile("[\x00\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]|[\U0001fffe-\U0010ffff]")
# The same, written as JSON escapes (surrogate pairs included: they trigger the exact check).
_BAD_ESCAPE = re.compile(r"\\u(?:[dD][89a-fA-F]|[fF][dD][dDeE]|[fF]{3}[eEfF]|0000)")

# RFC 3339 section 5.6 date-time (``T`` or a space, optional fraction, ``Z`` or a numeric offset).
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
# Timestamps outside this window are surely wrong (a year-9999 clock, an epoch-zero RTC).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def describe_bad_char(text: str) -> str | None:
    """Why ``text`` is not acceptable wire text, or None when it is."""
    for found in BAD_CHAR.finditer(text):
        code = ord(found.group())
        if code < 0x10000 or code & 0xFFFE == 0xFFFE:
            return _describe(code, found.start())
    return None


def _describe(code: int, index: int) -> str:
    if 0xD800 <= code <= 0xDFFF:
        kind = "a lone surrogate"
    elif code == 0:
        kind = "U+0000"
    else:
        kind = "a Unicode non-character"
    return f"must be valid Unicode text (contains {kind}, U+{code:04X}, at index {index})"


def may_hold_bad_text(document: str) -> bool:
    """Cheap test of a whole JSON document: False means no string in it can hold a bad character.

    Plain ASCII text can only carry one as an escape; the character test runs on other text only.
    """
    if _BAD_ESCAPE.search(document) is not None:
        return True
    return not document.isascii() and BAD_CHAR.search(document) is not None


def find_bad_text(value: Any, path: str) -> tuple[str, str] | None:
    """(field path, message) of the first string (or object key) in ``value`` that is not valid text."""
    if isinstance(value, str):
        problem = describe_bad_char(value)
        return None if problem is None else (path, problem)
    if isinstance(value, Mapping):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := describe_bad_char(key)) is not None:
                return (f"{path} key" if path else "key", problem)
            found = find_bad_text(item, child)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_bad_text(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class DuplicateKeyError(ValueError):
    pass


def unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads`` object hook: a repeated key is an error, not silently the last value."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(f"the key {key!r} appears twice in one object")
            seen.add(key)
    return obj


@functools.lru_cache(maxsize=4096)  # a fleet's reports repeat the same transition times
def timestamp_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable RFC 3339 timestamp, or None."""
    match = _RFC3339.match(text)
    if match is None:
        return "must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z"
    try:
        parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return "must be an RFC 3339 timestamp (no such date or time)"
    if not EARLIEST <= parsed < LATEST:
        return f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
    return None
