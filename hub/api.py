"""The JSON API: ingest and read endpoints."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hub import aggregate, store
from hub.aggregate import ClusterView, FleetSummary, Rollout
from hub.auth import cluster_of, may_read
from hub.context import HubContext
from hub.contract import ContractError, parse_report
from hub.filters import BadQuery, cluster_filter, window
from hub.model import summarize
from hub.openapi import OPENAPI
from hub.writer import WriterClosed


class _BodyTooLarge(Exception):
    pass


def _ctx(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def _error(status: int, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers or None)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def ingest(request: Request) -> Response:
    """POST /api/v1/reports: authenticate, bound, validate, then store (answered after commit)."""
    ctx = _ctx(request)
    started = time.perf_counter()

    def reject(status: int, reason: str, message: str, field: str | None = None, **headers: str) -> Response:
        ctx.metrics.reject(reason, time.perf_counter() - started)
        return _error(status, message, field, **headers)

    cluster = cluster_of(ctx, request)
    if cluster is None:
        return reject(
            401, "unauthenticated", "missing or invalid cluster token", **{"WWW-Authenticate": "Bearer"}
        )
    try:
        body = await _read_body(request, ctx.config.max_body)
    except _BodyTooLarge:
        return reject(413, "too_large", f"report body exceeds {ctx.config.max_body} bytes")
    try:
        report = parse_report(body)
    except ContractError as exc:
        return reject(422, "invalid", str(exc), exc.field_path)
    if report.cluster != cluster:
        return reject(403, "forbidden", f"this token may only report for cluster {cluster!r}", "cluster")
    received_at = ctx.config.clock()
    # The body is stored as received: it parsed under the contract and max_body bounds its size.
    pending = store.Pending(report, body, received_at, summarize(report, received_at))
    try:
        outcome = await ctx.writer.write(pending)
    except WriterClosed as exc:
        return reject(503, "unavailable", str(exc))
    except Exception:
        return reject(503, "storage", "the report could not be stored; retry later")
    ctx.metrics.accept(outcome.result, time.perf_counter() - started)
    return JSONResponse(
        {"result": outcome.result, "cluster": report.cluster, "sequence": report.sequence},
        status_code=200 if outcome.result == "duplicate" else 202,
    )


def _unauthorized() -> Response:
    return _error(
        401, "a viewer credential is required", **{"WWW-Authenticate": 'Basic realm="flotilla-hub"'}
    )


def summary_json(summary: FleetSummary) -> dict[str, Any]:
    return {
        "clusters": summary.clusters,
        "health": summary.by_health,
        "connectivity": summary.by_connectivity,
        "ready_and_online": summary.ready_and_online,
    }


def cluster_json(view: ClusterView) -> dict[str, Any]:
    s = view.summary
    return {
        "name": s.name,
        "health": s.health,
        "connectivity": view.connectivity,
        "commit": s.commit,
        "desired_commit": s.desired_commit,
        "labels": s.labels,
        "agent_version": s.agent_version,
        "agent_arch": s.agent_arch,
        "sequence": s.sequence,
        "interval_seconds": s.interval_seconds,
        "last_report_age_seconds": round(view.age_seconds, 3),
        "source_error": s.source_error,
        "bundles": {b.bundle: b.state for b in s.bundles},
    }


def rollout_json(r: Rollout, *, placements: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": r.bundle,
        "target_commit": r.target_commit,
        "clusters": r.clusters,
        "states": r.by_state,
        "commits": [{"commit": g.commit, "clusters": g.clusters, "states": g.by_state} for g in r.by_commit],
        "offline": r.offline,
        "summary": aggregate.rollout_sentence(r),
    }
    if placements:
        data["placements"] = [
            {
                "cluster": p.cluster,
                "state": p.state,
                "commit": p.commit,
                "desired_commit": p.desired_commit,
                "chart_version": p.chart_version,
                "connectivity": p.connectivity,
            }
            for p in r.placements
        ]
    return data


async def summary(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    return JSONResponse(summary_json(aggregate.fleet_summary(ctx.views())))


async def clusters(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    try:
        wanted = cluster_filter(request.query_params)
        offset, limit = window(request.query_params)
    except BadQuery as exc:
        return _error(400, str(exc), exc.parameter)
    matching = aggregate.select(ctx.views(), wanted)
    shown = matching[offset:] if limit is None else matching[offset : offset + limit]
    return JSONResponse({"total": len(matching), "clusters": [cluster_json(v) for v in shown]})


async def cluster(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    name = request.path_params["name"]
    view = ctx.view(name)
    if view is None:
        return _error(404, f"no cluster named {name!r} has reported")
    with ctx.reader_lock:
        report = store.load_report(ctx.reader, name, view.summary.sequence)
        stored = store.history(ctx.reader, name)
    data = cluster_json(view)
    data["report"] = report.to_json_dict() if report else None
    data["history"] = [{"sequence": seq, "received_at": at} for seq, at in stored]
    return JSONResponse(data)


async def bundles(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    return JSONResponse(
        {"bundles": [rollout_json(r, placements=False) for r in aggregate.rollouts(ctx.views())]}
    )


async def bundle(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    name = request.path_params["name"]
    r = aggregate.rollout(name, ctx.views())
    if not r.clusters:
        return _error(404, f"no cluster reports a bundle named {name!r}")
    return JSONResponse(rollout_json(r, placements=True))


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    text = ctx.metrics.render(aggregate.fleet_summary(ctx.views()))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
