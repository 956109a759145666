"""Start-up without a closed port: the read model loads in a thread while the hub already answers.

Until the fleet is loaded every request gets a fast answer instead of a refused connection:
``/healthz`` says ``starting`` (503, so a load balancer or readiness probe waits), everything else
is ``503`` with ``Retry-After`` — the agent's reporter keeps such a report in its outbox and sends
it again after its backoff, so nothing is lost and nothing is acknowledged before it is stored.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

log = structlog.get_logger("hub")

RETRY_AFTER_SECONDS = 2


class Loading:
    """The state of the start-up load: ``ready`` once the loaded context is in place."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ready = threading.Event()
        self.failed: str | None = None
        self._thread: threading.Thread | None = None

    def start(self, load: Callable[[], None]) -> None:
        def run() -> None:
            try:
                load()
            except Exception as exc:  # the hub cannot serve: say why and stop the process
                self.failed = str(exc)[:500]
                log.error("hub_load_failed", error=self.failed)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            self.ready.set()

        self._thread = threading.Thread(target=run, name="hub-load", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end (shut-down while loading); True once it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready.is_set()


def _answer(status: int, body: dict[str, object], retry: bool) -> tuple[dict[str, object], bytes]:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if retry:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    headers.append((b"cache-control", b"no-store"))
    return {"type": "http.response.start", "status": status, "headers": headers}, data


class Warmup:
    """ASGI middleware: 503 (``Retry-After``) for every request until ``loading.ready``."""

    def __init__(self, app: ASGIApp, loading: Loading) -> None:
        self.app = app
        self.loading = loading

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.loading.ready.is_set():
            await self.app(scope, receive, send)
            return
        seconds = round(time.monotonic() - self.loading.started, 1)
        if scope["path"] == "/healthz":
            state = "failed" if self.loading.failed else "starting"
            start, body = _answer(503, {"status": state, "ready": False, "loading_seconds": seconds}, True)
        else:
            message = "the hub is starting (loading the fleet); retry shortly"
            start, body = _answer(503, {"error": message, "loading_seconds": seconds}, True)
        await send(start)
        await send({"type": "http.response.body", "body": body})
