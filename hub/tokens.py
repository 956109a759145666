"""Token format and hashing: ``flt_<id>_<secret>``; only the sha256 of the whole token is stored.

The id lets the hub find the row without comparing secrets; the hash comparison is then done in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "flt"


@dataclass(frozen=True, slots=True)
class NewToken:
    token_id: str
    token: str
    digest: str


def new_token() -> NewToken:
    token_id = secrets.token_hex(8)
    token = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    return NewToken(token_id, token, digest(token))


def new_rows(owners: Iterable[str]) -> tuple[list[tuple[str, str, str, float]], dict[str, str]]:
    """A new token for each owner: the rows to store (id, owner, hash, created) and owner -> token."""
    rows = []
    created: dict[str, str] = {}
    now = time.time()
    for owner in owners:
        new = new_token()
        rows.append((new.token_id, owner, new.digest, now))
        created[owner] = new.token
    return rows, created


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id_of(token: str) -> str | None:
    """The id part of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or len(token) > 200:
        return None
    return parts[1]


def matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(token), stored_digest)
