"""The operator's views as JSON: glance, errors, versions, history (same data as the pages)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import fleetviews
from hub.api import _error, _reader, cluster_json
from hub.context import HubContext
from hub.filters import agent_grouping, window
from hub.fleetindex import ErrorGroup
from hub.timeline import WINDOWS, Event, cluster_events, cluster_spans
from hub.views_web import window_of


def _paged(total: int, offset: int, limit: int, key: str, items: list[Any]) -> JSONResponse:
    return JSONResponse({"total": total, "offset": offset, "limit": limit, key: items})


@_reader
def glance(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params, default_limit=50)
    g = fleetviews.glance(ctx.model, request.query_params.get("group", ""), ctx.now(), offset, limit)
    return JSONResponse(
        {
            "clusters": g.total,
            "states": dict(fleetviews.ordered(g.states)),
            "summary": fleetviews.sentence(g.states),
            "group": g.key,
            "keys": g.keys,
            "total": g.groups_total,
            "offset": offset,
            "limit": limit,
            "groups": [
                {
                    "value": x.value,
                    "clusters": x.total,
                    "states": dict(fleetviews.ordered(x.counts)),
                    "summary": fleetviews.sentence(x.counts),
                    "worst": x.worst,
                    "cause": x.cause or None,
                }
                for x in g.groups
            ],
        }
    )


def error_json(g: ErrorGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "signature": g.signature,
        "example": g.example,
        "example_cluster": g.example_cluster,
        "clusters": g.count,
        "bundles": dict(g.bundles.most_common(20)),
        "commits": dict(g.commits.most_common(20)),
        "first_seen": g.first_seen,
        "last_seen": g.last_seen,
    }


@_reader
def errors(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params, default_limit=50)
    total, groups = fleetviews.errors(ctx.model, ctx.now(), offset, limit)
    return _paged(total, offset, limit, "errors", [error_json(g) for g in groups])


@_reader
def error(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params)
    found = fleetviews.error_group(ctx.model, request.path_params["id"], ctx.now(), offset, limit)
    if found is None:
        return _error(404, "no cluster reports an error with this id")
    group, total, views = found
    data = error_json(group)
    data.update(clusters=total, offset=offset, limit=limit, affected=[cluster_json(v) for v in views])
    return JSONResponse(data)


@_reader
def versions(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params, default_limit=20, max_limit=200)
    total, bundles = fleetviews.versions(ctx.model, ctx.now(), offset, limit)
    agents, arches = fleetviews.agents(ctx.model, ctx.now())
    by, agent_page = agent_grouping(request.query_params)
    per = fleetviews.AGENT_GROUPS_PER_PAGE
    groups = fleetviews.agents_by(ctx.model, ctx.now(), by, (agent_page - 1) * per, per)
    return JSONResponse(
        {
            "agent_versions": dict(agents[:100]),
            "architectures": dict(arches[:100]),
            "agents_by": {
                "by": groups.by,
                "dimensions": groups.dimensions,
                "total": groups.total,
                "page": agent_page,
                "groups": [
                    {"value": value, "clusters": n, "agent_versions": dict(versions[:20])}
                    for value, n, versions in groups.groups
                ],
            },
            "total": total,
            "offset": offset,
            "limit": limit,
            "bundles": [
                {
                    "name": v.rollout.bundle,
                    "clusters": v.rollout.clusters,
                    "target_commit": v.rollout.target_commit,
                    "commits": {g.commit or "": g.clusters for g in v.rollout.by_commit[:20]},
                    "chart_versions": dict(v.chart_versions[:20]),
                    "digests": dict(v.digests[:20]),
                    "not_on_target": v.behind,
                }
                for v in bundles
            ],
        }
    )


@_reader
def behind(ctx: HubContext, request: Request) -> Response:
    offset, limit = window(request.query_params)
    name = request.path_params["name"]
    found = fleetviews.behind(ctx.model, name, ctx.now(), offset, limit)
    if found is None:
        return _error(404, f"no cluster reports a bundle named {name!r}")
    rollout, total, views = found
    data = {"bundle": name, "target_commit": rollout.target_commit}
    data.update(total=total, offset=offset, limit=limit)
    return JSONResponse({**data, "clusters": [cluster_json(v) for v in views]})


def event_json(ev: Event) -> dict[str, Any]:
    return {"at": ev.at, "cluster": ev.cluster or None, "kind": ev.kind, "text": ev.text, "state": ev.state}


@_reader
def history(ctx: HubContext, request: Request) -> Response:
    name = window_of(request.query_params)
    offset, limit = window(request.query_params, default_limit=50)
    now = ctx.now()
    index = fleetviews.index_of(ctx.model, now)
    with index.lock:
        index.history.sample(index.states, now)
        columns = index.history.columns(WINDOWS[name], now, 96 if name == "24h" else 168)
        total, events = index.history.recent(offset, limit)
    return JSONResponse(
        {
            "window": name,
            "samples": [{"until": end, "states": counts} for end, counts in columns if counts],
            "total": total,
            "offset": offset,
            "limit": limit,
            "events": [event_json(ev) for ev in events],
        }
    )


@_reader
def cluster_history(ctx: HubContext, request: Request) -> Response:
    cluster = request.path_params["name"]
    name = window_of(request.query_params)
    now = ctx.now()
    view = ctx.model.view(cluster, now)
    if view is None:
        return _error(404, f"no cluster named {cluster!r} has reported")
    entries = ctx.readers.get().history(cluster, ctx.config.retention.reports)
    start = now - WINDOWS[name]
    interval, thresholds = view.summary.interval_seconds, ctx.config.thresholds
    spans = cluster_spans(entries, interval, thresholds, start, now)
    events = [ev for ev in cluster_events(entries, interval, thresholds, now) if ev.at >= start]
    return JSONResponse(
        {
            "cluster": cluster,
            "window": name,
            "spans": [{"start": s.start, "end": s.end, "state": s.state} for s in spans],
            "events": [event_json(ev) for ev in events],
        }
    )


ROUTES = [
    Route("/api/v1/glance", glance),
    Route("/api/v1/errors", errors),
    Route("/api/v1/errors/{id}", error),
    Route("/api/v1/versions", versions),
    Route("/api/v1/versions/{name:path}", behind),
    Route("/api/v1/history", history),
    Route("/api/v1/clusters/{name}/history", cluster_history),
]
