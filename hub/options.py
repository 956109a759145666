"""One way to declare the hub's numeric command-line options: type, default and help that shows it."""

from __future__ import annotations

import argparse


def numeric(parser: argparse.ArgumentParser, flag: str, default: float, metavar: str, text: str) -> None:
    """Add ``flag`` (an int option if ``default`` is an int, else a float) with its default in the help."""
    parser.add_argument(
        flag, type=type(default), default=default, metavar=metavar, help=f"{text} (default: {default:g})"
    )
