"""A short-lived cache of read answers, so people reading cannot crowd out agents reporting.

An answer (a page, an API document) is reused for at most ``max_age`` seconds (default 1), and only
while it is current or the hub is busy: nothing changed since it was computed, or at least
``BUSY_CHANGES`` changes at ``BUSY_RATE`` a second or more (ingest under load). Twenty people
looping on the page then cost one rendering per second, not one per request, while a quiet hub
always answers with what it has just committed. ``max_age`` 0 turns the cache off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

MAX_ENTRIES = 256
DEFAULT_MAX_AGE = 1.0
BUSY_CHANGES = 10
BUSY_RATE = 50.0  # changes a second


@dataclass(frozen=True, slots=True)
class _Answer:
    version: int
    at: float
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


class ReadCache:
    def __init__(self, max_age: float = DEFAULT_MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, _Answer] = OrderedDict()

    def get(self, key: str, version: int) -> Response | None:
        """The kept answer for ``key`` if it may still be given; ``version`` counts the changes so far."""
        if self.max_age <= 0:
            return None
        with self._lock:
            answer = self._answers.get(key)
            if answer is None:
                return None
            age = self._clock() - answer.at
            changes = version - answer.version
            busy = changes >= BUSY_CHANGES and changes >= BUSY_RATE * age
            if age > self.max_age or (changes and not busy):
                del self._answers[key]
                return None
        return Response(answer.body, answer.status, headers=dict(answer.headers))

    def put(self, key: str, response: Response, version: int, computed_at: float) -> None:
        """Keep a 200 answer computed from ``version``, aged from ``computed_at`` (when it started)."""
        if self.max_age <= 0 or response.status_code != 200:
            return
        headers = tuple((k, v) for k, v in response.headers.items() if k != "content-length")
        answer = _Answer(version, computed_at, response.status_code, bytes(response.body), headers)
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > MAX_ENTRIES:
                self._answers.popitem(last=False)

    def now(self) -> float:
        return self._clock()
