"""``flotilla-agent validate`` and ``flotilla-agent plan``: load the repo, print, pick an exit code.

Exit codes: 0 success, 1 invalid repo or unknown cluster. Problems print as ``path:line: message``
with the path as the user gave it, so editors and terminals can jump to them.
"""

from __future__ import annotations

import os
from typing import TextIO

from agent.fleet import output
from agent.fleet.errors import FleetRepoError, Problem, UnknownClusterError
from agent.fleet.planning import plan_cluster
from agent.fleet.repo import load_repo

OUTPUT_FORMATS = ("table", "json")


def validate(path: str, *, stdout: TextIO, stderr: TextIO) -> int:
    try:
        repo = load_repo(path)
    except FleetRepoError as error:
        _print_problems(path, error.problems, stdout)
        count = len(error.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''} found", file=stderr)
        return 1
    print(
        f"{path}: valid fleet repo ({len(repo.clusters)} clusters, {len(repo.groups)} groups, "
        f"{len(repo.bundles)} bundles)",
        file=stdout,
    )
    return 0


def plan(path: str, cluster: str, output_format: str, *, stdout: TextIO, stderr: TextIO) -> int:
    try:
        cluster_plan = plan_cluster(load_repo(path), cluster)
    except FleetRepoError as error:
        _print_problems(path, error.problems, stderr)
        print(f"{path}: invalid fleet repo, nothing planned", file=stderr)
        return 1
    except UnknownClusterError as error:
        print(f"{path}: {error}", file=stderr)
        return 1
    render = output.render_json if output_format == "json" else output.render_table
    stdout.write(render(cluster_plan))
    return 0


def _print_problems(path: str, problems: tuple[Problem, ...], stream: TextIO) -> None:
    for problem in problems:
        file = path if problem.file == "." else os.path.join(path, problem.file)
        location = f"{file}:{problem.line}" if problem.line > 0 else file
        print(f"{location}: {problem.message}", file=stream)
