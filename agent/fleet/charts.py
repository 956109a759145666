"""Local charts in the repo, read once at load time: their version and a digest of their content.

The digest covers every file's relative path and bytes, so any edit to a local chart changes the
digest of every release that uses it, and nothing else does. Every file is checked by
:meth:`RepoFiles.chart_files` first (inside the repo, regular, within the chart's limits), because
helm is handed this same directory.
"""

from __future__ import annotations

import dataclasses
import hashlib

from agent.fleet import versions
from agent.fleet.errors import Problem
from agent.fleet.files import ChartFile, Refused, RepoFiles

CHART_FILE = "Chart.yaml"
_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class LocalChart:
    version: str
    content_digest: str


def read_local_chart(files: RepoFiles, repo_path: str) -> LocalChart | Problem:
    """The chart at ``repo_path`` (relative to the repo root), or what is wrong with it."""
    chart_file = f"{repo_path}/{CHART_FILE}"
    try:
        digest = files.chart_digest(repo_path, content_digest)
        parsed = files.read(chart_file, "Chart", files.yaml_parser)
    except Refused as refused:
        return Problem(repo_path, 0, f"local chart {refused.message}")
    except OSError as error:
        return Problem(chart_file, 0, f"cannot read the chart: {type(error).__name__}")
    if isinstance(parsed, Problem):
        return parsed
    version = parsed.data.get("version") if isinstance(parsed.data, dict) else None
    if not isinstance(version, str) or not versions.is_exact(version):
        line = parsed.line_of(("version",))
        shown = version if not isinstance(version, str) else version[:40]
        return Problem(chart_file, line, f"a chart needs a semver 'version' (like 1.2.3), got {shown!r}")
    return LocalChart(version=version, content_digest=digest)


def content_digest(chart_files: list[ChartFile]) -> str:
    """sha256 hex over the sorted (relative path, content) pairs of every file of the chart."""
    digest = hashlib.sha256()
    for relative, real, info in chart_files:
        digest.update(f"{relative}\0{info.st_size}\0".encode())
        with open(real, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
