"""The ``flotilla-agent`` command line: parses arguments and hands over to one module per command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flotilla-agent",
        description="Flotilla edge agent: pulls its bundles from a Git fleet repo and keeps them "
        "installed, healthy and un-drifted in this cluster.",
    )
    parser.add_argument("--version", action="version", version=f"flotilla-agent {__version__}")
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
