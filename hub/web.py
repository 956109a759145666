"""HTML routes of the status page (rendered in the read pool, see :mod:`hub.reading`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from hub import page_cluster, pages, queries, rollout_api, rollout_pages
from hub.context import HubContext
from hub.filters import BadQuery, cluster_filter, page_number
from hub.page_glance import glance_html
from hub.reading import Handler, read_endpoint

_NO_CACHE = {"Cache-Control": "no-store"}


def _unauthorized() -> Response:
    return HTMLResponse(
        pages.message_page("Sign in", "A viewer token is needed: use it as the password (any user name)."),
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="flotilla-hub"'},
    )


def _bad_query(exc: BadQuery) -> Response:
    return HTMLResponse(pages.message_page("Bad request", str(exc)), status_code=400)


def _page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    return read_endpoint(handler, _unauthorized, _bad_query)


@_page
def index(ctx: HubContext, request: Request) -> Response:
    now = ctx.now()
    summary = ctx.model.summary(now)
    params = dict(request.query_params)
    try:
        wanted = cluster_filter(params)
        page = page_number(params)
    except BadQuery as exc:
        return HTMLResponse(pages.index_page(summary, [], 0, params, 1, str(exc)), status_code=400)
    found = ctx.model.clusters(wanted, (page - 1) * pages.PAGE_SIZE, pages.PAGE_SIZE, now)
    rollouts = rollout_pages.section(
        rollout_api.book(request).pictures(ctx.staged(), now),
        rollout_api.brakes_json(ctx),
        only_active=True,
    )
    top = glance_html(ctx, params)
    return HTMLResponse(
        pages.index_page(summary, found.views, found.total, params, page, rollouts=rollouts, top=top),
        headers=_NO_CACHE,
    )


@_page
def cluster(ctx: HubContext, request: Request) -> Response:
    name = request.path_params["name"]
    view = ctx.model.view(name, ctx.now())
    if view is None:
        return HTMLResponse(
            pages.message_page("Unknown cluster", f"No cluster named {name!r} has reported."), 404
        )
    conn = ctx.readers.get()
    report = conn.load_report(name, view.summary.sequence)
    history = conn.history(name, 20)
    return HTMLResponse(page_cluster.cluster_page(view, report, history), headers=_NO_CACHE)


@_page
def bundle(ctx: HubContext, request: Request) -> Response:
    name = request.path_params["name"]
    page = page_number(request.query_params)
    size = pages.PAGE_SIZE
    rollout = queries.rollout(ctx.model, name, ctx.now(), (page - 1) * size, size)
    if rollout is None:
        return HTMLResponse(
            pages.message_page("Unknown bundle", f"No cluster reports a bundle named {name!r}."), 404
        )
    staged = [p for p in rollout_api.book(request).pictures(ctx.staged(), ctx.now()) if p.bundle == name]
    html = pages.bundle_page(rollout, page)
    if staged:  # the staged rollout of the bundle above its per-commit table
        html = html.replace(
            "<h2>By commit</h2>",
            rollout_pages.section(staged, (), only_active=False) + "<h2>By commit</h2>",
            1,
        )
    return HTMLResponse(html, headers=_NO_CACHE)
