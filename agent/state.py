"""Small JSON files in the agent's state directory, written atomically (temp file, fsync, rename).

A crash or power cut mid-write leaves the previous file intact, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.actions import Failure

FAILURES_FILE = "failures.json"
LAST_REPORT_FILE = "last-report.json"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader sees the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_json_atomic(path: Path, data: Any) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())


def read_json(path: Path) -> Any | None:
    """The file's JSON, or None when it is missing or unreadable (a corrupt file is treated as absent)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_failures(state_dir: Path) -> dict[str, Failure]:
    raw = read_json(state_dir / FAILURES_FILE)
    if not isinstance(raw, dict):
        return {}
    failures: dict[str, Failure] = {}
    for key, value in raw.items():
        try:
            failures[str(key)] = Failure(**value)
        except TypeError:
            continue
    return failures


def save_failures(state_dir: Path, failures: dict[str, Failure]) -> None:
    write_json_atomic(state_dir / FAILURES_FILE, {key: asdict(f) for key, f in sorted(failures.items())})
