"""The ``flotilla-hub`` command line: the parser, ``serve`` and the entry point.

The administrative subcommands (``token``, ``viewer``, ``cluster``, ``rollout``) are in
``hub.admin_cli``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hub import __version__
from hub.admin_cli import add_admin_commands
from hub.database import StoreError
from hub.limits import add_limit_arguments, limits_from
from hub.options import numeric
from hub.readcache import DEFAULT_MAX_AGE
from hub.reportstore import Retention
from hub.rollout_book import DEFAULT_VIEW_SECONDS
from hub.store_options import add_store_options, database_from

DEFAULT_RETENTION = Retention()
DEFAULT_READ_PROCESSES = 1 if sys.platform == "linux" else 0  # memfd and SOCK_SEQPACKET are Linux's


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flotilla-hub",
        description="Flotilla hub: collects status reports from edge agents and serves the fleet's status.",
    )
    parser.add_argument("--version", action="version", version=f"flotilla-hub {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the hub (HTTP API, status page, ingest)")
    add_store_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default: 8080)")
    serve.add_argument(
        "--public-read", action="store_true", help="serve the page and read API without credentials"
    )
    serve.add_argument("--stale-after-intervals", type=float, default=3.0, metavar="N")
    serve.add_argument("--offline-after-intervals", type=float, default=10.0, metavar="N")
    serve.add_argument(
        "--max-body", type=int, default=1024 * 1024, metavar="BYTES", help="largest report accepted"
    )
    numeric(serve, "--history-reports", DEFAULT_RETENTION.reports, "N", "stored reports kept per cluster")
    numeric(
        serve,
        "--history-days",
        DEFAULT_RETENTION.days,
        "DAYS",
        "age past which stored reports are deleted, the current one aside",
    )
    numeric(
        serve,
        "--history-bodies",
        DEFAULT_RETENTION.bodies,
        "N",
        "of those, how many newest keep their full body; older ones keep sequence, time, health and commit",
    )
    numeric(
        serve,
        "--read-cache-seconds",
        DEFAULT_MAX_AGE,
        "SECONDS",
        "how long a page or API answer is reused, so readers cannot slow ingest (0: off)",
    )
    numeric(
        serve,
        "--rollout-view-seconds",
        DEFAULT_VIEW_SECONDS,
        "SECONDS",
        "how long one evaluation of a staged rollout (it walks the rollout's clusters) answers gate "
        "questions and pages (0: every one evaluates afresh)",
    )
    numeric(
        serve,
        "--read-processes",
        DEFAULT_READ_PROCESSES,
        "N",
        "processes that serve the page and the read API, so people reading never slow agents "
        "reporting (0: this process serves everything)",
    )
    add_limit_arguments(serve)
    serve.set_defaults(handler=_serve)

    add_admin_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from hub import logs, serving
    from hub.app import Writing, create_app
    from hub.connectivity import Thresholds
    from hub.context import HubConfig
    from hub.readproc import ReaderProcess, settings_message
    from hub.readsync import CommitCounter

    database = database_from(args)
    try:
        thresholds = Thresholds(args.stale_after_intervals, args.offline_after_intervals)
        retention = Retention(args.history_reports, args.history_days, args.history_bodies)
        limits = limits_from(args)
        if args.read_processes < 0:
            raise ValueError("--read-processes must be 0 or more")
        if args.read_processes and sys.platform != "linux":
            raise ValueError("--read-processes needs Linux; use --read-processes 0")
    except ValueError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 2
    logs.configure()  # only for a hub that will run: a refused command line changes no process state
    # The event loop releases the GIL on every socket call; with the default 5 ms switch interval it
    # can then wait that long behind the writer thread. 1 ms keeps ingest latency low.
    sys.setswitchinterval(0.001)
    config = HubConfig(
        data_dir=database.data_dir or Path(),
        database_url=database.url,
        public_read=args.public_read,
        thresholds=thresholds,
        max_body=args.max_body,
        retention=retention,
        read_cache_seconds=args.read_cache_seconds,
        rollout_view_seconds=args.rollout_view_seconds,
    )
    counter = CommitCounter() if args.read_processes else None
    readers = []
    if counter is not None:
        for index in range(1, args.read_processes + 1):
            name = f"reader-{index}"
            readers.append(ReaderProcess(name, settings_message(config, limits, name), counter))
    serving.run(create_app(config, Writing(counter)), args.host, args.port, limits, readers)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except StoreError as exc:
        print(f"flotilla-hub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
