"""Sends status reports to the hub: the only agent module that talks to it.

``submit`` writes the report to an outbox in the state directory (temp file, fsync, rename) and
wakes a background thread; it never waits on the network, so reconciliation is never blocked by
the hub. The thread sends the newest report first (the hub shows the current state as soon as it
is back), then the older queued ones in sequence order, so the hub's history has no holes. An entry
leaves the outbox only after a 2xx, or after a 4xx that no retry could fix (it is logged). Failures
back off exponentially with jitter. Without a new report for one interval, the thread re-sends the
latest report under a new sequence number: the heartbeat the hub derives connectivity from.

Standard library HTTP only: the agent needs no extra dependency for this.
"""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from agent.state import write_bytes_atomic
from hub.contract import StatusReport, parse_report, utc_now_rfc3339

log = structlog.get_logger(__name__)

OUTBOX_DIR = "outbox"
SEQUENCE_FILE = "report-sequence"
MAX_OUTBOX = 200  # reports kept while the hub is unreachable; the oldest are dropped beyond that
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 300.0
REQUEST_TIMEOUT = 15.0
GATE_TIMEOUT = 5.0  # a pass waits at most this long for a rollout gate answer
MAX_GATE_ANSWER = 256 * 1024
_RETRYABLE_4XX = {408, 425, 429}

_sequence_lock = threading.Lock()


# --- small file helpers ---------------------------------------------------------------------------


def next_sequence(state_dir: Path) -> int:
    """The next report sequence number, persisted in ``state_dir`` (monotonic across restarts).

    It is never below the current time in milliseconds: an agent whose state was wiped still reports
    numbers above those the hub already holds, and when two agents report for one cluster (the old
    and the new pod of a self-upgrade, each with its own state) the later report wins at the hub --
    a counter alone would let the pod started last outnumber the other for good, and the old agent's
    report of a rollback would be taken for a late one.
    """
    path = state_dir / SEQUENCE_FILE
    with _sequence_lock:
        try:
            current = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            current = int(time.time() * 1000)
        state_dir.mkdir(parents=True, exist_ok=True)
        following = max(current + 1, int(time.time() * 1000))
        write_bytes_atomic(path, f"{following}\n".encode())
        return following


def redact(url: str) -> str:
    """``url`` without user info, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# --- pure decisions --------------------------------------------------------------------------------


def send_order(sequences: list[int]) -> list[int]:
    """Newest first, then the rest oldest to newest."""
    if not sequences:
        return []
    ordered = sorted(sequences)
    return [ordered[-1], *ordered[:-1]]


def backoff_delay(
    failures: int, rng: random.Random, first: float = FIRST_BACKOFF, cap: float = MAX_BACKOFF
) -> float:
    """Exponential backoff with "equal jitter": between half and all of min(cap, first * 2^(n-1))."""
    ceiling = min(cap, first * 2.0 ** max(0, failures - 1))
    return float(ceiling / 2 + rng.random() * ceiling / 2)


def is_permanent(status: int) -> bool:
    """A 4xx that retrying the same report cannot fix (bad token, wrong cluster, invalid report)."""
    return 400 <= status < 500 and status not in _RETRYABLE_4XX


# --- the reporter --------------------------------------------------------------------------------


class Reporter:
    def __init__(
        self,
        hub_url: str,
        token: str,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        first_backoff: float = FIRST_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        start: bool = True,
    ) -> None:
        # The token is the credential: user info in the URL is dropped (urllib would take it for a host).
        self._hub_for_logs = redact(hub_url)
        self._endpoint = self._hub_for_logs.rstrip("/") + "/api/v1/reports"
        self._gates_endpoint = self._hub_for_logs.rstrip("/") + "/api/v1/rollout/gates"
        self._token = token
        self._state_dir = state_dir
        self._outbox = state_dir / OUTBOX_DIR
        self._outbox.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._latest: StatusReport | None = self._newest_queued()
        self._last_activity = clock()
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: str | None = None  # why the last delivery failed; None once one succeeds
        self._thread = threading.Thread(target=self._run, name="flotilla-reporter", daemon=True)
        if start:
            self._thread.start()

    # public API

    def submit(self, report: StatusReport) -> None:
        """Queue ``report`` durably and return at once; it is sent in the background."""
        self._store(report)
        self._latest = report
        self._last_activity = self._clock()
        self._wake.set()

    def ask_gates(self, request: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Ask the hub for this cluster's rollout gates (synchronously, bounded); None if it cannot answer."""
        status, detail, payload = self._send(
            self._gates_endpoint, json.dumps(request).encode(), GATE_TIMEOUT, MAX_GATE_ANSWER
        )
        if status == 200 and isinstance(payload, dict):
            return payload
        log.warning("rollout_gates_unavailable", hub=self._hub_for_logs, status=status or None, error=detail)
        return None

    def pending(self) -> list[int]:
        """Sequence numbers still in the outbox."""
        return sorted(int(p.stem) for p in self._outbox.glob("*.json") if p.stem.isdigit())

    def heartbeat_due(self) -> bool:
        """True when no report was submitted or sent for one announced interval."""
        latest = self._latest
        return latest is not None and self._clock() - self._last_activity >= latest.interval_seconds

    def heartbeat(self) -> StatusReport | None:
        """Queue the latest report again under a new sequence number (and timestamp)."""
        latest = self._latest
        if latest is None:
            return None
        beat = dataclasses.replace(
            latest, sequence=next_sequence(self._state_dir), generated_at=utc_now_rfc3339()
        )
        self.submit(beat)
        return beat

    def flush(self, timeout: float) -> bool:
        """Send the outbox now (a backoff in progress is cut short) and wait up to ``timeout`` seconds
        for it to empty; True if it did."""
        deadline = time.monotonic() + timeout
        self._retry_at = 0.0
        self._wake.set()
        while self.pending():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def close(self) -> None:
        """Stop the background thread; what is still queued stays in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=REQUEST_TIMEOUT + 5)

    # background work

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self._next_wake())
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.heartbeat_due() and not self.pending():
                self.heartbeat()
                self._wake.clear()
            if self._clock() >= self._retry_at:
                self.send_pending()

    def _next_wake(self) -> float:
        latest = self._latest
        waits = [
            1.0
            if latest is None
            else max(0.05, latest.interval_seconds - (self._clock() - self._last_activity))
        ]
        if self.pending():
            waits.append(max(0.05, self._retry_at - self._clock()))
        return min(waits)

    def send_pending(self) -> bool:
        """Send the outbox in order; stop at the first retryable failure. True if it emptied."""
        for sequence in send_order(self.pending()):
            if self._stop.is_set():
                return False
            path = self._outbox / f"{sequence:020d}.json"
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            status, detail = self._post(body)
            if 200 <= status < 300:
                path.unlink(missing_ok=True)
                self._failures = 0
                self.last_error = None
                self._last_activity = self._clock()
                log.debug("report_sent", hub=self._hub_for_logs, sequence=sequence, status=status)
            elif is_permanent(status):
                path.unlink(missing_ok=True)
                log.error(
                    "report_rejected", hub=self._hub_for_logs, sequence=sequence, status=status, detail=detail
                )
            else:
                self._failures += 1
                self.last_error = f"{self._hub_for_logs}: {detail or f'HTTP {status}'}"
                delay = backoff_delay(self._failures, self._rng, self._first_backoff, self._max_backoff)
                self._retry_at = self._clock() + delay
                log.warning(
                    "hub_unreachable",
                    hub=self._hub_for_logs,
                    status=status or None,
                    error=detail,
                    queued=len(self.pending()),
                    retry_in_seconds=round(delay, 2),
                )
                return False
        return True

    def _post(self, body: bytes) -> tuple[int, str]:
        """(HTTP status, detail); status 0 when the hub could not be reached."""
        status, detail, _ = self._send(self._endpoint, body, REQUEST_TIMEOUT, 0)
        return status, detail

    def _send(self, url: str, body: bytes, timeout: float, read_limit: int) -> tuple[int, str, Any]:
        """(HTTP status, detail, decoded JSON answer of at most ``read_limit`` bytes, or None)."""
        request = urllib.request.Request(  # noqa: S310 - the hub URL is configured by the operator
            url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "User-Agent": "flotilla-agent",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                payload = None
                if read_limit:
                    raw = response.read(read_limit + 1)
                    payload = json.loads(raw) if len(raw) <= read_limit else None
                return int(response.status), "", payload
        except urllib.error.HTTPError as error:
            return int(error.code), _error_detail(error), None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return 0, str(reason)[:300], None

    def _store(self, report: StatusReport) -> None:
        path = self._outbox / f"{report.sequence:020d}.json"
        write_bytes_atomic(path, report.to_json().encode())
        queued = self.pending()
        for old in queued[: max(0, len(queued) - MAX_OUTBOX)]:
            (self._outbox / f"{old:020d}.json").unlink(missing_ok=True)
            log.warning("report_dropped", sequence=old, reason=f"outbox holds at most {MAX_OUTBOX} reports")

    def _newest_queued(self) -> StatusReport | None:
        """The newest report left in the outbox by a previous run (the heartbeat's template)."""
        queued = self.pending()
        if not queued:
            return None
        try:
            return parse_report((self._outbox / f"{queued[-1]:020d}.json").read_bytes())
        except (OSError, ValueError):
            return None


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read(4096) or b"{}")
    except (ValueError, OSError):
        return error.reason if isinstance(error.reason, str) else ""
    return str(payload.get("error", ""))[:300] if isinstance(payload, dict) else ""
