"""The JSON API: ingest and read endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from hub import aggregate, queries
from hub.aggregate import ClusterView, FleetSummary, Rollout
from hub.context import HubContext
from hub.filters import cluster_filter, window
from hub.ingest import ingest as ingest  # POST /api/v1/reports (a plain ASGI endpoint)
from hub.openapi import OPENAPI
from hub.reading import Handler, read_endpoint


def _ctx(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def _error(status: int, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers or None)


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
        "states": summary.states,  # each cluster once, connectivity first: the page's cards and bar
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
        "cause": s.cause or None,
        "bundles": {b.bundle: b.state for b in s.bundles},
    }


MAX_COMMITS_LISTED = 20  # per bundle in a rollout: a fleet of hostile agents could invent one each


def rollout_json(r: Rollout, *, placements: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": r.bundle,
        "target_commit": r.target_commit,
        "clusters": r.clusters,
        "states": r.by_state,
        "commits": [
            {"commit": g.commit, "clusters": g.clusters, "states": g.by_state}
            for g in r.by_commit[:MAX_COMMITS_LISTED]
        ],
        "other_commits": max(0, len(r.by_commit) - MAX_COMMITS_LISTED),
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


def _reader(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    return read_endpoint(handler, _unauthorized, lambda exc: _error(400, str(exc), exc.parameter))


@_reader
def summary(ctx: HubContext, request: Request) -> Response:
    data = summary_json(ctx.model.summary(ctx.now()))
    data["causes"] = [{"cause": cause, "clusters": n} for cause, n in ctx.model.cause_counts()]
    label = request.query_params.get("label")
    if label:
        data["by_label"] = {"key": label[:253], "values": ctx.model.label_counts(label)}
    return JSONResponse(data)


@_reader
def clusters(ctx: HubContext, request: Request) -> Response:
    wanted = cluster_filter(request.query_params)
    offset, limit = window(request.query_params)
    page = ctx.model.clusters(wanted, offset, limit, ctx.now())
    return JSONResponse(
        {
            "total": page.total,
            "offset": offset,
            "limit": limit,
            "clusters": [cluster_json(v) for v in page.views],
        }
    )


@_reader
def cluster(ctx: HubContext, request: Request) -> Response:
    name = request.path_params["name"]
    offset, limit = window(request.query_params, default_limit=50, max_limit=500)
    view = ctx.model.view(name, ctx.now())
    if view is None:
        return _error(404, f"no cluster named {name!r} has reported")
    conn = ctx.readers.get()
    report = conn.load_report(name, view.summary.sequence)
    stored = conn.history(name, offset + limit)[offset:]
    data = cluster_json(view)
    data["report"] = report.to_json_dict() if report else None
    data["history"] = [
        {"sequence": h.sequence, "received_at": h.received_at, "health": h.health, "commit": h.commit}
        for h in stored
    ]
    return JSONResponse(data)


@_reader
def bundles(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params, default_limit=100)
    total, page = queries.rollouts(ctx.model, ctx.now(), offset, limit)
    return JSONResponse(
        {
            "total": total,
            "offset": offset,
            "limit": limit,
            "bundles": [rollout_json(r, placements=False) for r in page],
        }
    )


@_reader
def bundle(ctx: HubContext, request: Request) -> Response:
    name = request.path_params["name"]
    offset, limit = window(request.query_params)
    r = queries.rollout(ctx.model, name, ctx.now(), offset, limit)
    if r is None:
        return _error(404, f"no cluster reports a bundle named {name!r}")
    data = rollout_json(r, placements=True)
    data.update(offset=offset, limit=limit)
    return JSONResponse(data)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@_reader
def metrics(ctx: HubContext, request: Request) -> Response:
    text = ctx.metrics.render(ctx.model.summary(ctx.now()))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
