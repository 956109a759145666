"""In-flight records: which helm process is working on which release, kept in the state directory.

Written before helm starts (with its pid, once known) and removed when it exits, so a record that
survives names a helm that was killed with the agent.  ``agent.operations`` judges them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent import state

DIRECTORY = "inflight"


def _path(state_dir: Path, namespace: str, release: str) -> Path:
    # Namespaces and release names are DNS labels: no "/" and no "..", so the name is safe.
    return state_dir / DIRECTORY / f"{namespace}.{release}.json"


def load(state_dir: Path, namespace: str, release: str) -> dict[str, Any] | None:
    raw = state.read_json(_path(state_dir, namespace, release))
    return raw if isinstance(raw, dict) else None


def host() -> str:
    return socket.gethostname()


@contextmanager
def operation(state_dir: Path, namespace: str, release: str, name: str) -> Iterator[Callable[[int], None]]:
    """``with operation(...) as started: helm.upgrade_install(..., on_start=started)``."""
    path = _path(state_dir, namespace, release)

    def started(pid: int) -> None:
        state.write_json_atomic(
            path, {"operation": name, "host": host(), "helm_pid": pid, "started": time.time()}
        )

    try:
        yield started
    finally:
        path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Is ``pid`` a live process on this host (a zombie is dead)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"


def helm_running(pid: int) -> bool:
    """Is ``pid`` a live helm process (not a recycled pid now running something else)?"""
    if not process_alive(pid):
        return False
    try:
        return b"helm" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to tell: assume it is


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return "?"
