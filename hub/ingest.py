"""POST /api/v1/reports: authenticate, bound, validate, then store (answered only after commit).

A plain ASGI endpoint rather than a Starlette request handler: every agent's report comes through
here, and building a ``Request`` (its header map) and a ``JSONResponse`` per report cost about a
tenth of the hub's CPU per report. The route, the middlewares (security headers, warm-up) and the
error handling around it are the application's as for every other endpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import fast_contract
from hub.auth import bearer_of
from hub.context import HubContext
from hub.contract import ContractError
from hub.limits import BODY_RECEIVED
from hub.model import summarize, summary_to_json
from hub.report_facts import ReportFacts
from hub.reportstore import Outcome, Pending
from hub.security import HEADERS as SECURITY_HEADERS
from hub.warmup import Loading
from hub.writer import WriterClosed

BODY_SECONDS = 30.0  # a body trickled slower than this is cut off (408): it would hold a slot
SEQUENCE_LEAD_MS = 86_400_000  # how far a sequence may run ahead of the hub's clock in milliseconds

_JSON = (b"content-type", b"application/json")


class _BodyTooLarge(Exception):
    pass


class _Refused(Exception):
    """A report refused with ``status``; ``reason`` is the metrics label."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.field = status, reason, message, field


def _headers(scope: Scope) -> tuple[bytes, bytes | None]:
    """(authorization, content-length) of the request; the first of each, as Starlette reads them."""
    authorization = length = None
    for key, value in scope["headers"]:
        if key == b"authorization" and authorization is None:
            authorization = value
        elif key == b"content-length" and length is None:
            length = value
    return authorization or b"", length


async def _read_body(scope: Scope, receive: Receive, declared: bytes | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    first: Message | None = None
    if scope.get(BODY_RECEIVED):  # all here already (an agent's report, sent at once): no timer
        first = await receive()
        if first["type"] == "http.request" and not first.get("more_body", False):
            body: bytes = first.get("body", b"")
            if len(body) > limit:
                raise _BodyTooLarge
            return body
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(BODY_SECONDS):
        while True:
            message = first or await receive()
            first = None
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [(b"content-length", str(len(body)).encode()), _JSON, *extra, *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(message: str, field: str | None) -> bytes:
    data: dict[str, Any] = {"error": message}
    if field is not None:
        data["field"] = field
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


class IngestEndpoint:
    """The ASGI app of ``POST /api/v1/reports`` (the route allows POST only)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: HubContext = scope["app"].state.hub
        started = time.perf_counter()
        try:
            report, outcome = await _ingest(ctx, scope, receive)
        except _Refused as refused:
            ctx.metrics.reject(refused.reason, time.perf_counter() - started)
            extra = [(b"www-authenticate", b"Bearer")] if refused.status == 401 else []
            await _answer(send, refused.status, _error_body(refused.message, refused.field), *extra)
            return
        ctx.metrics.accept(outcome.result, time.perf_counter() - started)
        answer = {"result": outcome.result, "cluster": report.cluster, "sequence": report.sequence}
        await _answer(send, 200 if outcome.result == "duplicate" else 202, orjson.dumps(answer))


async def _ingest(ctx: HubContext, scope: Scope, receive: Receive) -> tuple[ReportFacts, Outcome]:
    authorization, declared = _headers(scope)
    token = bearer_of(authorization.decode("latin-1"))
    cluster = None if token is None else ctx.credentials.owner("cluster", token)
    if cluster is None:
        raise _Refused(401, "unauthenticated", "missing or invalid cluster token")
    try:
        body = await _read_body(scope, receive, declared, ctx.config.max_body)
    except _BodyTooLarge:
        raise _Refused(413, "too_large", f"report body exceeds {ctx.config.max_body} bytes") from None
    except TimeoutError:
        message = f"the report body did not arrive within {BODY_SECONDS:.0f}s"
        raise _Refused(408, "too_slow", message) from None
    try:
        report = fast_contract.parse_facts(body)  # the contract's parser, in C for the common report
    except ContractError as exc:
        raise _Refused(422, "invalid", str(exc), exc.field_path) from None
    if report.cluster != cluster:
        message = f"this token may only report for cluster {cluster!r}"
        raise _Refused(403, "forbidden", message, "cluster")
    received_at = ctx.config.clock()
    if report.sequence > received_at * 1000 + SEQUENCE_LEAD_MS:
        raise _Refused(
            422,
            "invalid",
            "sequence: is ahead of the hub's clock in milliseconds by more than a day; an agent counts "
            "from its clock in milliseconds when its state is reset, so this counter ran away: remove "
            "the agent's report-sequence file",
            "sequence",
        )
    summary = summarize(report, received_at)
    pending = Pending(report, body, received_at, summary, summary_to_json(summary))
    assert ctx.writer is not None, "a reader process routes reports elsewhere (hub.app.create_app)"
    try:
        return report, await ctx.writer.write(pending)
    except WriterClosed as exc:
        raise _Refused(503, "unavailable", str(exc)) from None
    except Exception:
        raise _Refused(503, "storage", "the report could not be stored; retry later") from None


ingest = IngestEndpoint()
PATH = "/api/v1/reports"


class IngestFirst:
    """ASGI middleware (the main process's first): a report goes straight to :data:`ingest`, past the
    layers only pages and the read API need (security headers, which ingest sends itself, warm-up,
    ETags, exception handlers, the router): they cost about a fifth of the event loop's time per report.

    Only an exact ``POST /api/v1/reports`` once the fleet is loaded; anything else, including a report
    during start-up (503 from :class:`hub.warmup.Warmup`), goes on to the application as before.
    """

    def __init__(self, app: ASGIApp, loading: Loading) -> None:
        self.app = app
        self.ready = loading.ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope.get("root_path")
            and self.ready.is_set()
        ):
            await ingest(scope, receive, send)
        else:
            await self.app(scope, receive, send)
