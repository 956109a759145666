"""``flotilla-agent run``, ``once`` and ``status``: settings in, a loop or one pass out, a table printed."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from agent.logs import configure_logging
from agent.settings import AgentSettings, SettingsError, load_settings
from agent.settings_table import add_settings_arguments
from hub import contract


def add_agent_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run",
        help="reconcile this cluster continuously (interval plus jitter, backoff on errors)",
        description="Pull the fleet repo, apply this cluster's releases, check health and drift, "
        "report, and repeat. SIGTERM ends the pass cleanly.",
    )
    add_settings_arguments(run)
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.set_defaults(handler=_run)

    once = subparsers.add_parser(
        "once",
        help="one reconcile pass; exit 0 when every bundle is Ready",
        description="One pass, then a summary table. Exit 0 when every bundle is Ready, 1 otherwise.",
    )
    add_settings_arguments(once)
    once.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    once.set_defaults(handler=_once)

    status = subparsers.add_parser(
        "status",
        help="show the last report from the state directory (works offline)",
        description="Print the last status report this agent wrote; needs no network and no cluster.",
    )
    status.add_argument("--state-dir", help="state directory (env FLOTILLA_STATE_DIR)")
    status.add_argument("--output", choices=("table", "json"), default="table")
    status.set_defaults(handler=_status)


def _settings_or_exit(args: argparse.Namespace) -> AgentSettings | None:
    try:
        return load_settings(args)
    except SettingsError as error:
        print(f"flotilla-agent: {error}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    from agent import loop

    configure_logging(args.log_level)
    settings = _settings_or_exit(args)
    if settings is None:
        return 2
    return loop.run(settings)


def _once(args: argparse.Namespace) -> int:
    from agent import loop

    configure_logging(args.log_level)
    settings = _settings_or_exit(args)
    if settings is None:
        return 2
    code, _, report = loop.once(settings)
    if report is not None:
        print_report(report, sys.stdout)
    return code


def _status(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from agent import report

    state_dir = args.state_dir or os.environ.get("FLOTILLA_STATE_DIR") or "/var/lib/flotilla"
    last = report.load_last(Path(state_dir))
    if last is None:
        print(f"flotilla-agent: no report in {state_dir} yet (has a pass run?)", file=sys.stderr)
        return 1
    if args.output == "json":
        print(last.to_json())
    else:
        print_report(last, sys.stdout)
    return 0 if last.health == "Ready" else 1


def print_report(report: contract.StatusReport, out: TextIO) -> None:
    source = report.source
    print(
        f"cluster {report.cluster}  health {report.health}  commit {(source.desired_commit or '-')[:12]}"
        f"  report #{report.sequence} at {report.generated_at}",
        file=out,
    )
    if source.signature:
        signer = f", signer {source.signature_signer}" if source.signature_signer else ""
        why = f": {source.signature_reason}" if source.signature_reason else ""
        print(f"signature: {source.signature_commit} {source.signature}{signer}{why}", file=out)
    errors = report.errors.items()
    if source.error and not errors:  # a report from before the separate error fields
        errors = [("source", source.error)]
    for label, text in errors:
        print(f"{label}: {_one_line(text, 300)}", file=out)
    for problem in source.errors:
        print(f"  {problem.file}:{problem.line}: {problem.message}", file=out)
    rows = [("BUNDLE", "RELEASE", "NAMESPACE", "STATE", "READY", "REV", "MESSAGE")]
    for bundle in report.bundles:
        rows.append(
            (
                bundle.bundle,
                bundle.release,
                bundle.namespace,
                bundle.state,
                f"{bundle.resources_ready}/{bundle.resources_total}",
                str(bundle.helm_revision or "-"),
                _one_line(bundle.message, 100),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1],
            file=out,
        )
    for bundle in report.bundles:
        for resource in [*bundle.non_ready, *bundle.modified]:
            print(
                f"  {bundle.bundle}: {resource.kind} {resource.namespace}/{resource.name}: "
                f"{resource.message}",
                file=out,
            )


def _one_line(text: str, limit: int) -> str:
    """A multi-line message on one line (the cause leads: helm's log lines are already gone)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
