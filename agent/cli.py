"""The ``flotilla-agent`` command line: parses arguments and hands over to one module per command."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Sequence

from agent import __version__
from agent.commands import add_agent_commands
from agent.manifests_cli import add_manifests_command
from agent.selfcommands import add_self_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flotilla-agent",
        description="Flotilla edge agent: pulls its bundles from a Git fleet repo and keeps them "
        "installed, healthy and un-drifted in this cluster.",
    )
    parser.add_argument("--version", action="version", version=f"flotilla-agent {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_fleet_commands(subparsers)
    version = subparsers.add_parser(
        "version",
        help="print the agent's version and the machine it runs on",
        description="The agent's version, this machine's architecture (uname -m) and the Python it runs.",
    )
    version.add_argument("--output", choices=("text", "json"), default="text")
    version.set_defaults(handler=_run_version)
    add_agent_commands(subparsers)
    add_manifests_command(subparsers)
    add_self_commands(subparsers)
    return parser


def _add_fleet_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``validate`` and ``plan``: offline checks of a fleet repo checkout, no cluster needed."""
    validate = subparsers.add_parser(
        "validate",
        help="check a fleet repo and print every problem as path:line: message",
        description="Check a fleet repo checkout. Exit 0 when valid, 1 with one line per problem.",
    )
    validate.add_argument("path", metavar="PATH", help="the fleet repo's root directory")
    validate.add_argument(
        "--verify-signatures",
        choices=("ssh", "gpg", "off"),
        default="off",
        help="also check that the clone's HEAD commit is signed by a trusted key (as the agent does)",
    )
    validate.add_argument("--trusted-keys", metavar="FILE", help="allowed_signers (ssh) or keyring (gpg)")
    validate.add_argument("--tag", help="with --verify-signatures: check this tag's signature instead")
    validate.set_defaults(handler=_run_validate)

    plan = subparsers.add_parser(
        "plan",
        help="show what one cluster gets: releases, charts, merged values, order and digests",
        description="Show the releases the fleet repo at PATH gives one cluster, dependencies first.",
    )
    plan.add_argument("path", metavar="PATH", help="the fleet repo's root directory")
    plan.add_argument("--cluster", required=True, metavar="NAME", help="a cluster name from clusters/")
    plan.add_argument(
        "--output", choices=("table", "json"), default="table", help="output format (default: table)"
    )
    plan.set_defaults(handler=_run_plan)


def _run_version(args: argparse.Namespace) -> int:
    info = {"version": __version__, "machine": platform.machine(), "python": platform.python_version()}
    if args.output == "json":
        print(json.dumps(info))
    else:
        print(f"flotilla-agent {info['version']} ({info['machine']}, Python {info['python']})")
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from agent.fleet import commands

    if args.verify_signatures != "off":
        from agent import verify_command

        mode, keys = args.verify_signatures, args.trusted_keys
        code = verify_command.verify(args.path, mode, keys, args.tag, stdout=sys.stdout, stderr=sys.stderr)
        if code == 2:
            return code
        return max(code, commands.validate(args.path, stdout=sys.stdout, stderr=sys.stderr))
    return commands.validate(args.path, stdout=sys.stdout, stderr=sys.stderr)


def _run_plan(args: argparse.Namespace) -> int:
    from agent.fleet import commands

    return commands.plan(args.path, args.cluster, args.output, stdout=sys.stdout, stderr=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
