"""The content digest of a chart directory in the repo, computed once at load time.

The digest covers every file's relative path and bytes, so any edit to a local chart changes the
digest of every release that uses it, and nothing else does.
"""

from __future__ import annotations

import hashlib
import pathlib


def content_digest(chart_dir: pathlib.Path) -> str:
    """sha256 hex over the sorted (relative path, content) pairs of every file under ``chart_dir``."""
    digest = hashlib.sha256()
    files = sorted(
        (path.relative_to(chart_dir).as_posix(), path) for path in chart_dir.rglob("*") if path.is_file()
    )
    for relative, path in files:
        content = path.read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()
