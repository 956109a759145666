"""The ``flotilla-hub`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hub import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flotilla-hub",
        description="Flotilla hub: collects status reports from edge agents and serves the fleet's status.",
    )
    parser.add_argument("--version", action="version", version=f"flotilla-hub {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
