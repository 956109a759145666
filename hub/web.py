"""HTML routes of the status page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from hub import aggregate, pages, rollout_api, rollout_pages, store
from hub.auth import may_read
from hub.context import HubContext
from hub.filters import BadQuery, cluster_filter, page_number

_NO_CACHE = {"Cache-Control": "no-store"}


def _ctx(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def _unauthorized() -> Response:
    return HTMLResponse(
        pages.message_page("Sign in", "A viewer token is needed: use it as the password (any user name)."),
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="flotilla-hub"'},
    )


async def index(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    views = ctx.views()
    summary = aggregate.fleet_summary(views)
    params = dict(request.query_params)
    try:
        wanted = cluster_filter(params)
        page = page_number(params)
    except BadQuery as exc:
        return HTMLResponse(pages.index_page(summary, [], params, 1, str(exc)), status_code=400)
    matching = aggregate.select(views, wanted)
    rollouts = rollout_pages.section(
        rollout_api.book(request).pictures(views, ctx.config.clock()),
        rollout_api.brakes_json(ctx),
        only_active=True,
    )
    return HTMLResponse(
        pages.index_page(summary, matching, params, page, rollouts=rollouts), headers=_NO_CACHE
    )


async def cluster(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    name = request.path_params["name"]
    view = ctx.view(name)
    if view is None:
        return HTMLResponse(
            pages.message_page("Unknown cluster", f"No cluster named {name!r} has reported."), 404
        )
    with ctx.reader_lock:
        report = store.load_report(ctx.reader, name, view.summary.sequence)
    return HTMLResponse(pages.cluster_page(view, report), headers=_NO_CACHE)


async def bundle(request: Request) -> Response:
    ctx = _ctx(request)
    if not may_read(ctx, request):
        return _unauthorized()
    name = request.path_params["name"]
    rollout = aggregate.rollout(name, ctx.views())
    if not rollout.clusters:
        return HTMLResponse(
            pages.message_page("Unknown bundle", f"No cluster reports a bundle named {name!r}."), 404
        )
    staged = [
        p for p in rollout_api.book(request).pictures(ctx.views(), ctx.config.clock()) if p.bundle == name
    ]
    html = pages.bundle_page(rollout)
    if staged:  # the staged rollout of the bundle above its per-commit table
        html = html.replace(
            "<h2>By commit</h2>",
            rollout_pages.section(staged, (), only_active=False) + "<h2>By commit</h2>",
            1,
        )
    return HTMLResponse(html, headers=_NO_CACHE)
