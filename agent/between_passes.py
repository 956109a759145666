"""Between two passes of the agent: how long to wait (interval plus jitter, or backoff after a
failed pass), the wait itself, cut short by a watched change to a local fleet repo or the config
file (watchdog), and the SIGTERM/SIGINT handlers that stop the loop.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from agent.loop import Agent

log = structlog.get_logger("agent.loop")

FIRST_RETRY_SECONDS = 5.0
JITTER = 0.1
WAKE_SETTLE_SECONDS = 1.0


def next_wait(interval: float, consecutive_failures: int, rng: random.Random) -> float:
    """Seconds until the next pass (pure): backoff after failures, else interval plus jitter."""
    if consecutive_failures > 0:
        return float(min(interval, FIRST_RETRY_SECONDS * 2 ** (consecutive_failures - 1)))
    return interval * (1 + JITTER * rng.random())


def wait_for_next_pass(agent: Agent, seconds: float) -> None:
    """Until the next pass is due, SIGTERM, or a watched change (then a short settle: a push writes
    many files, and the pass should see all of them)."""
    deadline = time.monotonic() + seconds
    while not agent.stop.is_set() and not agent.wake.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        agent.wake.wait(min(remaining, 0.5))
    if agent.wake.is_set() and not agent.stop.is_set():
        agent.stop.wait(WAKE_SETTLE_SECONDS)


def install_signal_handlers(agent: Agent) -> None:
    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stop_requested", signal=signal.Signals(signum).name)
        agent.stop.set()
        agent.wake.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def watch_for_changes(agent: Agent) -> Any:
    """Wake the loop early when a local fleet repo or the config file changes (watchdog)."""
    paths: list[Path] = []
    if agent.settings.is_local_source:
        paths.append(Path(agent.settings.repo_url))
    if agent.settings.config_file is not None:
        paths.append(agent.settings.config_file.parent)
    if not paths:
        return None
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    class Waker(FileSystemEventHandler):
        # Any change wakes the loop: a commit to a local Git repo only touches its refs and objects,
        # and a spurious pass costs one ls-remote.  The agent never writes into what it watches.
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.event_type not in ("opened", "closed_no_write"):
                agent.wake.set()

    observer = Observer()
    for path in paths:
        if path.exists():
            observer.schedule(Waker(), str(path), recursive=True)
    observer.daemon = True
    observer.start()
    return observer
