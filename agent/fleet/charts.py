"""Local charts in the repo, read once at load time: their version and a digest of their content.

The digest covers every file's relative path and bytes, so any edit to a local chart changes the
digest of every release that uses it, and nothing else does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib

from agent.fleet import versions
from agent.fleet.errors import Problem
from agent.fleet.yamldoc import parse_document

CHART_FILE = "Chart.yaml"


@dataclasses.dataclass(frozen=True)
class LocalChart:
    version: str
    content_digest: str


def read_local_chart(chart_dir: pathlib.Path, repo_path: str) -> LocalChart | Problem:
    """The chart in ``chart_dir`` (``repo_path`` relative to the repo root), or what is wrong with it."""
    chart_file = f"{repo_path}/{CHART_FILE}"
    try:
        parsed = parse_document(chart_file, (chart_dir / CHART_FILE).read_text(encoding="utf-8"))
        digest = content_digest(chart_dir)
    except (OSError, UnicodeDecodeError) as error:
        return Problem(chart_file, 0, f"cannot read the chart: {error}")
    if isinstance(parsed, Problem):
        return parsed
    version = parsed.data.get("version") if isinstance(parsed.data, dict) else None
    if not isinstance(version, str) or not versions.is_exact(version):
        line = parsed.line_of(("version",))
        return Problem(chart_file, line, f"a chart needs a semver 'version' (like 1.2.3), got {version!r}")
    return LocalChart(version=version, content_digest=digest)


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
