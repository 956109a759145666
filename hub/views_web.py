"""HTML routes of the operator's views: errors, versions, history (the glance is part of ``/``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from hub import fleetviews, pages
from hub.context import HubContext
from hub.filters import BadQuery, agent_grouping, page_number
from hub.page_errors import error_page, errors_page
from hub.page_history import COLUMNS, cluster_history_page, history_page
from hub.page_versions import behind_page, versions_page
from hub.reading import Handler, read_endpoint
from hub.timeline import WINDOWS, cluster_events, cluster_spans
from hub.web import _bad_query, _unauthorized

ERRORS_PER_PAGE = 50
BUNDLES_PER_PAGE = 20
EVENTS_PER_PAGE = 50
_NO_CACHE = {"Cache-Control": "no-store"}


def window_of(params: Mapping[str, str]) -> str:
    window = params.get("window", "") or "24h"
    if window not in WINDOWS:
        raise BadQuery("window", f"must be one of {', '.join(WINDOWS)}")
    return window


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_NO_CACHE)


def _page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    return read_endpoint(handler, _unauthorized, _bad_query)


def errors(ctx: HubContext, request: Request) -> Response:
    page = page_number(request.query_params)
    total, groups = fleetviews.errors(ctx.model, ctx.now(), (page - 1) * ERRORS_PER_PAGE, ERRORS_PER_PAGE)
    return _html(errors_page(total, groups, ctx.now(), page, ERRORS_PER_PAGE))


def error(ctx: HubContext, request: Request) -> Response:
    page = page_number(request.query_params)
    size = pages.PAGE_SIZE
    found = fleetviews.error_group(ctx.model, request.path_params["id"], ctx.now(), (page - 1) * size, size)
    if found is None:
        return _html(pages.message_page("Unknown error", "No cluster reports this error (any more)."), 404)
    group, total, views = found
    return _html(error_page(group, total, views, ctx.now(), page, size))


def versions(ctx: HubContext, request: Request) -> Response:
    page = page_number(request.query_params)
    size = BUNDLES_PER_PAGE
    total, bundles = fleetviews.versions(ctx.model, ctx.now(), (page - 1) * size, size)
    agents, arches = fleetviews.agents(ctx.model, ctx.now())
    by, agent_page = agent_grouping(request.query_params)
    per = fleetviews.AGENT_GROUPS_PER_PAGE
    groups = fleetviews.agents_by(ctx.model, ctx.now(), by, (agent_page - 1) * per, per)
    return _html(versions_page(total, bundles, agents, arches, groups, page, size, agent_page))


def behind(ctx: HubContext, request: Request) -> Response:
    page = page_number(request.query_params)
    size = pages.PAGE_SIZE
    name = request.path_params["name"]
    found = fleetviews.behind(ctx.model, name, ctx.now(), (page - 1) * size, size)
    if found is None:
        return _html(
            pages.message_page("Unknown bundle", f"No cluster reports a bundle named {name!r}."), 404
        )
    rollout, total, views = found
    return _html(behind_page(rollout, total, views, page, size))


def history(ctx: HubContext, request: Request) -> Response:
    window = window_of(request.query_params)
    page = page_number(request.query_params)
    now = ctx.now()
    index = fleetviews.index_of(ctx.model, now)
    with index.lock:
        index.history.sample(index.states, now)
        columns = index.history.columns(WINDOWS[window], now, COLUMNS[window])
        total, events = index.history.recent((page - 1) * EVENTS_PER_PAGE, EVENTS_PER_PAGE)
    return _html(history_page(columns, window, total, events, now, page, EVENTS_PER_PAGE))


def cluster_history(ctx: HubContext, request: Request) -> Response:
    name = request.path_params["name"]
    window = window_of(request.query_params)
    now = ctx.now()
    view = ctx.model.view(name, now)
    if view is None:
        return _html(pages.message_page("Unknown cluster", f"No cluster named {name!r} has reported."), 404)
    entries = ctx.readers.get().history(name, ctx.config.retention.reports)
    start = now - WINDOWS[window]
    interval = view.summary.interval_seconds
    thresholds = ctx.config.thresholds
    spans = cluster_spans(entries, interval, thresholds, start, now)
    events = [ev for ev in cluster_events(entries, interval, thresholds, now) if ev.at >= start]
    index = fleetviews.index_of(ctx.model, now)
    with index.lock:
        _, seen = index.history.recent(0, EVENTS_PER_PAGE, cluster=name)
    return _html(cluster_history_page(name, window, spans, start, events, now, seen, request.query_params))


ROUTES = [
    Route("/errors", _page(errors)),
    Route("/errors/{id}", _page(error)),
    Route("/versions", _page(versions)),
    Route("/versions/{name:path}", _page(behind)),
    Route("/history", _page(history)),
    Route("/clusters/{name}/history", _page(cluster_history)),
]
