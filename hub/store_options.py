"""The command-line options that say where the hub's store is (``--data-dir``, ``--database-url``),
shared by ``serve`` and the administrative subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.database import URL_ENV, Database, from_options


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="directory of the hub's SQLite database (the default store)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"a postgresql:// URL: the hub's store in PostgreSQL, shared by replicas (default: ${URL_ENV})",
    )


def database_from(args: argparse.Namespace) -> Database:
    return from_options(args.data_dir, args.database_url)
