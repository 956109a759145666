"""Read endpoints run off the event loop: the credential is checked on the loop (cheap), the work —
querying the read model, SQLite reads, rendering, encoding — in the read pool, so a page or an API
answer never delays a report being accepted; answers are reused for a second (:mod:`hub.readcache`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from hub.auth import may_read
from hub.context import HubContext
from hub.filters import BadQuery

Handler = Callable[[HubContext, Request], Response]


def read_endpoint(
    handler: Handler, unauthorized: Callable[[], Response], bad_query: Callable[[BadQuery], Response]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        ctx: HubContext = request.app.state.hub
        if not may_read(ctx, request):
            return unauthorized()
        key = f"{request.url.path}?{request.url.query}"
        version = ctx.model.version
        cached = ctx.read_cache.get(key, version)
        if cached is not None:
            return cached
        started = ctx.read_cache.now()

        def work() -> Response:
            try:
                return handler(ctx, request)
            except BadQuery as exc:
                return bad_query(exc)

        response = await ctx.off_loop(work)
        ctx.read_cache.put(key, response, version, started)
        return response

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint
