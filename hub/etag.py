"""ETags on read answers, so the page's refresh (and any poller) downloads a page only when it changed.

Plain ASGI middleware: a 200 answer to a GET gets ``ETag`` (a hash of its body); a request whose
``If-None-Match`` names it gets ``304 Not Modified`` and no body. The status page's script sends the
ETag of what it shows with every refresh.
"""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


class ETags:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        wanted = dict(scope["headers"]).get(b"if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            tag = etag_of(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"etag"]
            if wanted == tag:
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"etag", tag))
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({**start, "headers": [*headers, (b"etag", tag)]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
