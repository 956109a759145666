"""Who is calling: a cluster's bearer token for ingest, a viewer's token (bearer or basic) for reads."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from hub.context import HubContext


def bearer_token(request: Request) -> str | None:
    return bearer_of(request.headers.get("authorization", ""))


def bearer_of(header: str) -> str | None:
    """The token of an ``Authorization: Bearer`` header value, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _basic_password(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def cluster_of(ctx: HubContext, request: Request) -> str | None:
    token = bearer_token(request)
    if token is None:
        return None
    return ctx.credentials.owner("cluster", token)


def may_read(ctx: HubContext, request: Request) -> bool:
    if ctx.config.public_read:
        return True
    token = bearer_token(request) or _basic_password(request)
    if token is None:
        return False
    return ctx.credentials.owner("viewer", token) is not None
